//! The `zkit-sim` command line: `run` explores seeded simulations of scenarios (one summary
//! line per scenario, a replay command per failing seed, non-zero exit on any violation);
//! `replay` runs one seed and prints or writes its trace; `serve` runs the simulated
//! ZooKeeper server on a real TCP port until Ctrl-C.

use std::process::ExitCode;

fn usage() -> &'static str {
    "usage: zkit-sim run [SCENARIO|DIR]... [--seeds N | --seeds A..B]\n       zkit-sim replay SCENARIO --seed S [--trace FILE]\n       zkit-sim serve [--listen ADDR] [--tick-ms N] [--seed N]\n       zkit-sim --version"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") => {
            println!("zkit-sim {}", zkit_sim::VERSION);
            ExitCode::SUCCESS
        }
        Some("run") => match explore::parse_run(&args[1..]) {
            Ok(opts) => explore::run(opts),
            Err(msg) => {
                eprintln!("zkit-sim run: {msg}\n{}", usage());
                ExitCode::from(2)
            }
        },
        Some("replay") => match explore::parse_replay(&args[1..]) {
            Ok(opts) => explore::replay(opts),
            Err(msg) => {
                eprintln!("zkit-sim replay: {msg}\n{}", usage());
                ExitCode::from(2)
            }
        },
        Some("serve") => match serve::parse(&args[1..]) {
            Ok(opts) => serve::run(opts),
            Err(msg) => {
                eprintln!("zkit-sim serve: {msg}\n{}", usage());
                ExitCode::from(2)
            }
        },
        Some(other) => {
            eprintln!("zkit-sim: unknown command {other:?}\n{}", usage());
            ExitCode::from(2)
        }
        None => {
            eprintln!("{}", usage());
            ExitCode::from(2)
        }
    }
}

/// `zkit-sim run` and `zkit-sim replay`: seeded simulations of scenario files.
mod explore {
    use std::ops::Range;
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    // Wall time only for the summary line's "N s": it is read between runs, outside every
    // simulation, and never reaches a trace (simulations use tokio's paused clock).
    use std::time::Instant as WallClock;

    use zkit_sim::runner;
    use zkit_sim::scenario;

    /// Parsed `run` options.
    #[derive(Debug)]
    pub struct RunOptions {
        scenarios: Vec<PathBuf>,
        seeds: Range<u64>,
    }

    /// Parsed `replay` options.
    #[derive(Debug)]
    pub struct ReplayOptions {
        scenario: PathBuf,
        seed: u64,
        trace: Option<PathBuf>,
    }

    fn seeds(v: &str) -> Result<Range<u64>, String> {
        let bad = || format!("--seeds {v:?}: expected N or A..B");
        match v.split_once("..") {
            Some((a, b)) => {
                let a: u64 = a.parse().map_err(|_| bad())?;
                let b: u64 = b.parse().map_err(|_| bad())?;
                if a >= b {
                    return Err(bad());
                }
                Ok(a..b)
            }
            None => match v.parse::<u64>() {
                Ok(n) if n > 0 => Ok(0..n),
                _ => Err(bad()),
            },
        }
    }

    /// Parses the arguments after `run`: files and directories (every `*.toml` in a
    /// directory except `regressions.toml`), `--seeds` (default 0..10).
    pub fn parse_run(args: &[String]) -> Result<RunOptions, String> {
        let mut opts = RunOptions {
            scenarios: Vec::new(),
            seeds: 0..10,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if arg == "--seeds" {
                let v = it.next().ok_or("--seeds needs a value")?;
                opts.seeds = seeds(v)?;
            } else if arg.starts_with("--") {
                return Err(format!("unknown argument {arg:?}"));
            } else {
                let path = Path::new(arg);
                if path.is_dir() {
                    let entries = std::fs::read_dir(path).map_err(|e| format!("{arg}: {e}"))?;
                    let mut files: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.extension().is_some_and(|x| x == "toml")
                                && p.file_name().is_some_and(|n| n != "regressions.toml")
                        })
                        .collect();
                    files.sort();
                    opts.scenarios.extend(files);
                } else {
                    opts.scenarios.push(path.to_path_buf());
                }
            }
        }
        if opts.scenarios.is_empty() {
            return Err("no scenario given".to_owned());
        }
        Ok(opts)
    }

    /// Parses the arguments after `replay`.
    pub fn parse_replay(args: &[String]) -> Result<ReplayOptions, String> {
        let mut scenario = None;
        let mut seed = None;
        let mut trace = None;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--seed" => {
                    let v = it.next().ok_or("--seed needs a value")?;
                    seed = Some(
                        v.parse()
                            .map_err(|_| format!("--seed {v:?}: expected an integer"))?,
                    );
                }
                "--trace" => {
                    trace = Some(PathBuf::from(it.next().ok_or("--trace needs a value")?));
                }
                other if other.starts_with("--") => {
                    return Err(format!("unknown argument {other:?}"))
                }
                other => {
                    if scenario.replace(PathBuf::from(other)).is_some() {
                        return Err("replay takes one scenario".to_owned());
                    }
                }
            }
        }
        Ok(ReplayOptions {
            scenario: scenario.ok_or("no scenario given")?,
            seed: seed.ok_or("--seed is required")?,
            trace,
        })
    }

    /// Runs every scenario for every seed.
    pub fn run(opts: RunOptions) -> ExitCode {
        let mut failed_any = false;
        for path in &opts.scenarios {
            let scenario = match scenario::load(path) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    failed_any = true;
                    continue;
                }
            };
            let started = WallClock::now();
            let mut failed = Vec::new();
            let mut acquisitions = 0;
            for seed in opts.seeds.clone() {
                let outcome = runner::run(&scenario, seed);
                acquisitions += outcome.acquisitions;
                if !outcome.passed() {
                    failed.push(outcome);
                }
            }
            let n = opts.seeds.end - opts.seeds.start;
            println!(
                "{}: {} seeds {}..{}, {} failed, {} acquisitions, {:.1} s",
                scenario.name,
                n,
                opts.seeds.start,
                opts.seeds.end,
                failed.len(),
                acquisitions,
                started.elapsed().as_secs_f64()
            );
            for outcome in &failed {
                failed_any = true;
                for v in outcome.violations.iter().take(3) {
                    println!("  seed {}: {v}", outcome.seed);
                }
                println!(
                    "  replay: zkit-sim replay {} --seed {} --trace trace-{}-{}.txt",
                    path.display(),
                    outcome.seed,
                    scenario.name,
                    outcome.seed
                );
            }
        }
        if failed_any {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }

    /// Runs one seed; prints the verdict, and the trace (or writes it to `--trace`).
    pub fn replay(opts: ReplayOptions) -> ExitCode {
        let scenario = match scenario::load(&opts.scenario) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        let outcome = runner::run(&scenario, opts.seed);
        match &opts.trace {
            Some(file) => {
                if let Err(e) = std::fs::write(file, &outcome.trace) {
                    eprintln!("zkit-sim replay: cannot write {}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            }
            None => print!("{}", outcome.trace),
        }
        for v in &outcome.violations {
            println!("violation: {v}");
        }
        println!(
            "{} seed {}: {} ({} acquisitions, fenced writes {} accepted / {} rejected)",
            scenario.name,
            opts.seed,
            if outcome.passed() { "passed" } else { "FAILED" },
            outcome.acquisitions,
            outcome.writes.0,
            outcome.writes.1
        );
        if outcome.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// `zkit-sim serve`: the simulated server on a real port.
mod serve {
    use std::process::ExitCode;
    use std::time::Duration;

    use zkit_sim::server::{Server, ServerConfig};

    /// Parsed `serve` options.
    #[derive(Debug)]
    pub struct Options {
        listen: String,
        config: ServerConfig,
    }

    fn value<'a>(
        args: &mut impl Iterator<Item = &'a String>,
        flag: &str,
    ) -> Result<&'a String, String> {
        args.next().ok_or_else(|| format!("{flag} needs a value"))
    }

    /// Parses the arguments after `serve`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut opts = Options {
            listen: "127.0.0.1:2181".to_owned(),
            config: ServerConfig::default(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--listen" => {
                    let v = value(&mut it, "--listen")?;
                    v.parse::<std::net::SocketAddr>()
                        .map_err(|e| format!("--listen {v:?}: {e}"))?;
                    opts.listen = v.clone();
                }
                "--tick-ms" => {
                    let v = value(&mut it, "--tick-ms")?;
                    let ms: u64 = v
                        .parse()
                        .ok()
                        .filter(|ms| (1..=3_600_000).contains(ms))
                        .ok_or_else(|| {
                            format!("--tick-ms {v:?}: expected 1..=3600000 milliseconds")
                        })?;
                    opts.config.tick_time = Duration::from_millis(ms);
                }
                "--seed" => {
                    let v = value(&mut it, "--seed")?;
                    opts.config.seed = v
                        .parse()
                        .map_err(|_| format!("--seed {v:?}: expected an integer"))?;
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(opts)
    }

    /// Serves until Ctrl-C.
    pub fn run(mut opts: Options) -> ExitCode {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with_writer(std::io::stderr)
            .try_init();
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("zkit-sim serve: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        runtime.block_on(async move {
            if let Some(port) = opts.listen.rsplit(':').next().and_then(|p| p.parse().ok()) {
                opts.config.client_port = port;
            }
            let handle = match Server::bind(&opts.listen, opts.config).await {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("zkit-sim serve: cannot listen on {}: {e}", opts.listen);
                    return ExitCode::FAILURE;
                }
            };
            println!(
                "zkit-sim {} serving ZooKeeper on {}",
                zkit_sim::VERSION,
                handle.connect_string()
            );
            if let Err(e) = tokio::signal::ctrl_c().await {
                eprintln!("zkit-sim serve: cannot wait for Ctrl-C: {e}");
            }
            handle.shutdown().await;
            ExitCode::SUCCESS
        })
    }
}
