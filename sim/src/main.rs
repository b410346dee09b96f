//! The `zkit-sim` command line (clap): `run` explores seeded simulations of scenarios across
//! processes, with a progress line and a summary table; `replay` runs one seed and writes its
//! trace (and a timeline page); `shrink` cuts a failing seed's fault schedule down to the
//! faults that matter; `serve` runs the simulated ZooKeeper server on a real TCP port.
//! Every command exits non-zero on a violation or bad arguments (clap's usage errors: 2).

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Seeded simulations of ZooKeeper coordination under failure.
#[derive(Debug, Parser)]
#[command(name = "zkit-sim", version = zkit_sim::VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenarios (files, or every *.toml of a directory) over many seeds.
    Run(cli::run::RunArgs),
    /// Run one seed of a scenario and write its trace.
    Replay {
        /// The scenario file.
        scenario: PathBuf,
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// Write the trace (history and server events, simulated timestamps) here instead of
        /// printing it.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Write the client library's tracing log, with simulated timestamps, here
        /// (level from RUST_LOG, default debug).
        #[arg(long)]
        log: Option<PathBuf>,
        /// Write a self-contained HTML timeline of the run here.
        #[arg(long)]
        timeline: Option<PathBuf>,
    },
    /// Shrink a failing seed's fault schedule to a minimal one that still fails, and print it
    /// as a scenario file.
    Shrink {
        /// The scenario file.
        scenario: PathBuf,
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// Write the shrunk scenario here instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Serve the simulated ZooKeeper server on a real TCP port until Ctrl-C.
    Serve(cli::serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => cli::run::run(args),
        Command::Replay {
            scenario,
            seed,
            trace,
            log,
            timeline,
        } => cli::replay::replay(&scenario, seed, trace, log, timeline),
        Command::Shrink {
            scenario,
            seed,
            out,
        } => cli::shrink::shrink(&scenario, seed, out),
        Command::Serve(args) => cli::serve::serve(args),
    }
}
