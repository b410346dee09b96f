//! Argument parsing shared by the examples (clap): `--hosts H` (default 127.0.0.1:2181),
//! `--path P`, `--id NAME`, `--hold-ms N`, `--rounds N`; `--help` prints what the example
//! does and its options.

use clap::{CommandFactory, FromArgMatches, Parser};

/// The examples' options.
#[derive(Debug, Parser)]
pub struct Args {
    /// The ZooKeeper connect string: `host:port[,host:port...][/chroot]`.
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub hosts: String,
    /// The recipe's ZooKeeper path (each example has its own default).
    #[arg(long)]
    pub path: String,
    /// This process's name, stored in its nodes and printed in its lines.
    #[arg(long, default_value_t = format!("pid-{}", std::process::id()))]
    pub id: String,
    /// How long to hold, lead, work or wait each round, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub hold_ms: u64,
    /// How many rounds (or values, changes, participants: see the example's description).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
}

/// Parses the command line of the example `name` (described by `about`), with `--path`
/// defaulting to `default_path`. Prints usage and exits 2 on anything unknown or malformed,
/// and prints help and exits 0 on `--help`.
pub fn parse(name: &'static str, about: &'static str, default_path: &'static str) -> Args {
    let command = Args::command()
        .name(name)
        .bin_name(format!("cargo run -p zkit --example {name} --"))
        .about(about)
        .mut_arg("path", |a| a.default_value(default_path).required(false));
    let matches = command.get_matches();
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
