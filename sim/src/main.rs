//! The `zkit-sim` command line: `run` will explore seeded simulations of scenarios; until the
//! harness lands it says so and exits successfully, so the README's main-job command runs.

use std::process::ExitCode;

fn usage() -> &'static str {
    "usage: zkit-sim run [SCENARIO|DIR]...\n       zkit-sim --version"
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
