//! Argument parsing shared by the examples: `--hosts H` (default 127.0.0.1:2181),
//! `--path P`, `--id NAME`, `--hold-ms N`, `--rounds N`.

use std::process::exit;

/// The examples' options.
pub struct Args {
    pub hosts: String,
    pub path: String,
    pub id: String,
    pub hold_ms: u64,
    pub rounds: u32,
}

/// Parses the command line; prints usage and exits 2 on anything unknown or malformed.
pub fn parse(default_path: &str) -> Args {
    let mut args = Args {
        hosts: "127.0.0.1:2181".into(),
        path: default_path.into(),
        id: format!("pid-{}", std::process::id()),
        hold_ms: 2000,
        rounds: 3,
    };
    let usage = |msg: &str| -> ! {
        eprintln!("{msg}\nusage: [--hosts H] [--path P] [--id NAME] [--hold-ms N] [--rounds N]");
        exit(2)
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            usage(&format!("{flag} needs a value"))
        };
        let number = |v: &str| {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag}: not a number: {v}")))
        };
        match flag.as_str() {
            "--hosts" => args.hosts = value,
            "--path" => args.path = value,
            "--id" => args.id = value,
            "--hold-ms" => args.hold_ms = number(&value),
            "--rounds" => args.rounds = number(&value) as u32,
            _ => usage(&format!("unknown option {flag}")),
        }
    }
    args
}
