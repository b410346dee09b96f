//! The `zkit-sim` command line: `run` will explore seeded simulations of scenarios; until the
//! harness lands it says so and exits successfully, so the README's main-job command runs.
//! `serve` runs the simulated ZooKeeper server on a real TCP port until Ctrl-C.

use std::process::ExitCode;

fn usage() -> &'static str {
    "usage: zkit-sim run [SCENARIO|DIR]...\n       zkit-sim serve [--listen ADDR] [--tick-ms N] [--seed N]\n       zkit-sim --version"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") => {
            println!("zkit-sim {}", zkit_sim::VERSION);
            ExitCode::SUCCESS
        }
        Some("run") => {
            println!(
                "zkit-sim {}: the simulation harness is not built yet; no scenario was run.",
                zkit_sim::VERSION
            );
            ExitCode::SUCCESS
        }
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
