//! The scenario file format: a TOML file describing an ensemble, a run length, client
//! workloads and a fault timeline.
//!
//! ```toml
//! [ensemble]
//! servers = 3
//! tick_ms = 500
//! session_timeout_ms = 4000
//!
//! [run]
//! duration_s = 60
//!
//! [[workload]]
//! role = "lock"
//! count = 5
//! path = "/locks/a"
//! hold_ms = [50, 300]
//!
//! [[fault]]
//! at_s = 10
//! kind = "partition"        # partition | heal | crash | restart
//! target = "lock-holder"    # lock-holder | leader-server | client:N | server:N
//! ```
//!
//! Unknown keys are errors, and every error names `file:line:col` with a hint
//! ([`ScenarioError`]). Targets are resolved when the fault fires, not when the file is read.

mod error;
mod target;

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use self::error::ScenarioError;
pub use self::target::Target;

/// A parsed, validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The name (the `name` key, or the file stem).
    pub name: String,
    /// Number of servers.
    pub servers: u8,
    /// The servers' tick.
    pub tick: Duration,
    /// The session timeout the clients ask for.
    pub session_timeout: Duration,
    /// How long each seed runs, in simulated time.
    pub duration: Duration,
    /// The client workloads, in file order.
    pub workloads: Vec<Workload>,
    /// The fault timeline, sorted by time (file order among equal times).
    pub faults: Vec<Fault>,
}

impl Scenario {
    /// Total number of workload clients (hosts `c1`..`cN`).
    pub fn client_count(&self) -> usize {
        self.workloads.iter().map(|w| w.count).sum()
    }
}

/// What a group of clients does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Contend for an exclusive lock, hold it, write to the fenced resource, release.
    Lock,
}

/// A group of identical clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// What they do.
    pub role: Role,
    /// How many clients.
    pub count: usize,
    /// The recipe's ZooKeeper path.
    pub path: String,
    /// How long a holder holds, drawn uniformly from this range (inclusive).
    pub hold: (Duration, Duration),
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Cut the target off from every other host it talks to.
    Partition,
    /// Repair every partition made so far (the target is optional and ignored).
    Heal,
    /// Crash the target's host.
    Crash,
    /// Restart the target's host (a target resolved by an earlier crash means the same host).
    Restart,
}

/// One fault of the timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    /// When it fires, from the start of the workload.
    pub at: Duration,
    /// What it does.
    pub kind: FaultKind,
    /// What it hits (`None` only for `heal`).
    pub target: Option<Target>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    #[allow(dead_code)]
    description: Option<String>,
    ensemble: RawEnsemble,
    run: RawRun,
    #[serde(default)]
    workload: Vec<RawWorkload>,
    #[serde(default)]
    fault: Vec<RawFault>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnsemble {
    servers: Spanned<u64>,
    tick_ms: Option<Spanned<u64>>,
    session_timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    duration_s: Spanned<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    role: Role,
    count: Spanned<u64>,
    path: Spanned<String>,
    hold_ms: Spanned<[u64; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    at_s: Spanned<f64>,
    kind: Spanned<FaultKind>,
    target: Option<Spanned<String>>,
}

/// Reads and parses the scenario file at `path`.
pub fn load(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ScenarioError::at(
            &file,
            "",
            None,
            format!("cannot read: {e}"),
            "check the path",
        )
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.clone());
    parse(&file, &stem, &text)
}

/// Parses scenario `text` read from `file` (named `default_name` unless it says otherwise).
pub fn parse(file: &str, default_name: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_owned();
        let hint = if message.contains("unknown field") {
            "remove the key or fix its spelling"
        } else if message.contains("missing field") {
            "add the missing key"
        } else if message.contains("unknown variant") {
            "use one of the listed values"
        } else if message.contains("invalid type") || message.contains("invalid length") {
            "fix the value's type"
        } else {
            "fix the TOML syntax"
        };
        ScenarioError::at(file, text, e.span(), message, hint)
    })?;
    let err = |span: Range<usize>, message: String, hint: &str| {
        ScenarioError::at(file, text, Some(span), message, hint)
    };

    let servers = *raw.ensemble.servers.get_ref();
    if !(1..=9).contains(&servers) {
        return Err(err(
            raw.ensemble.servers.span(),
            format!("servers = {servers} is out of range"),
            "use 1 to 9 servers",
        ));
    }
    let servers = servers as u8;
    let tick_ms = match &raw.ensemble.tick_ms {
        Some(t) if !(1..=60_000).contains(t.get_ref()) => {
            return Err(err(
                t.span(),
                format!("tick_ms = {} is out of range", t.get_ref()),
                "use 1 to 60000 milliseconds",
            ))
        }
        Some(t) => *t.get_ref(),
        None => 500,
    };
    let session_ms = match &raw.ensemble.session_timeout_ms {
        Some(t) if *t.get_ref() < 2 * tick_ms || *t.get_ref() > 20 * tick_ms => {
            return Err(err(
                t.span(),
                format!("session_timeout_ms = {} is out of range", t.get_ref()),
                "ZooKeeper allows 2 to 20 ticks",
            ))
        }
        Some(t) => *t.get_ref(),
        None => 4000.clamp(2 * tick_ms, 20 * tick_ms),
    };
    let duration_s = *raw.run.duration_s.get_ref();
    if !(1..=3600).contains(&duration_s) {
        return Err(err(
            raw.run.duration_s.span(),
            format!("duration_s = {duration_s} is out of range"),
            "use 1 to 3600 seconds",
        ));
    }

    let mut workloads = Vec::new();
    for w in raw.workload {
        let count = *w.count.get_ref();
        if !(1..=50).contains(&count) {
            return Err(err(
                w.count.span(),
                format!("count = {count} is out of range"),
                "use 1 to 50 clients",
            ));
        }
        let path = w.path.get_ref();
        if zkit::path::validate_path(path).is_err() {
            return Err(err(
                w.path.span(),
                format!("path {path:?} is not a ZooKeeper path"),
                "an absolute path like \"/locks/a\"",
            ));
        }
        let [lo, hi] = *w.hold_ms.get_ref();
        if lo > hi {
            return Err(err(
                w.hold_ms.span(),
                format!("hold_ms = [{lo}, {hi}] is an empty range"),
                "write [min, max] with min <= max",
            ));
        }
        workloads.push(Workload {
            role: w.role,
            count: count as usize,
            path: path.clone(),
            hold: (Duration::from_millis(lo), Duration::from_millis(hi)),
        });
    }
    let clients: usize = workloads.iter().map(|w| w.count).sum();

    let mut faults = Vec::new();
    for f in raw.fault {
        let at = *f.at_s.get_ref();
        if !at.is_finite() || at < 0.0 || at >= duration_s as f64 {
            return Err(err(
                f.at_s.span(),
                format!("at_s = {at} is outside the run"),
                "use a time from 0 to below run.duration_s",
            ));
        }
        let kind = *f.kind.get_ref();
        let target =
            match &f.target {
                None if kind == FaultKind::Heal => None,
                None => return Err(err(
                    f.kind.span(),
                    "this fault needs a target".to_owned(),
                    "add target = \"lock-holder\", \"leader-server\", \"client:N\" or \"server:N\"",
                )),
                Some(t) => {
                    let target = Target::parse(t.get_ref()).map_err(|m| {
                        err(
                            t.span(),
                            m,
                            "use \"lock-holder\", \"leader-server\", \"client:N\" or \"server:N\"",
                        )
                    })?;
                    match target {
                        Target::Client(n) if n > clients => {
                            return Err(err(
                                t.span(),
                                format!("there is no client {n}"),
                                &format!("the workloads have clients 1 to {clients}"),
                            ))
                        }
                        Target::Server(n) if n > servers => {
                            return Err(err(
                                t.span(),
                                format!("there is no server {n}"),
                                &format!("the ensemble has servers 1 to {servers}"),
                            ))
                        }
                        _ => Some(target),
                    }
                }
            };
        faults.push(Fault {
            at: Duration::from_secs_f64(at),
            kind,
            target,
        });
    }
    faults.sort_by_key(|f| f.at);

    Ok(Scenario {
        name: raw.name.unwrap_or_else(|| default_name.to_owned()),
        servers,
        tick: Duration::from_millis(tick_ms),
        session_timeout: Duration::from_millis(session_ms),
        duration: Duration::from_secs(duration_s),
        workloads,
        faults,
    })
}
