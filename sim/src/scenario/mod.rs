//! The scenario file format: a TOML file describing an ensemble, the network, a run length,
//! client workloads, a fault timeline and a swarm of random faults.
//!
//! ```toml
//! name = "lock_holder_partitioned"
//!
//! [ensemble]
//! servers = 3
//! tick_ms = 500
//! session_timeout_ms = 4000
//! sync_limit = 10           # ticks (ZooKeeper's syncLimit; the default, as scripts/zk)
//! init_limit = 20           # ticks (initLimit; the default)
//! read_only = false         # readonlymode.enabled: a member without quorum serves read-only
//!
//! [network]
//! latency_ms = [0, 100]     # every message takes this long (the default)
//! loss = 0.0                # the chance a link drops its messages for a while
//!
//! [run]
//! duration_s = 60
//! liveness_s = 20           # after the last fault ends: a lock handoff and a leader by then
//! step_ms = 5               # the simulation's time step (the default)
//!
//! [[workload]]              # see workload.rs
//! role = "lock"
//! count = 5
//! path = "/locks/a"
//! hold_ms = [50, 300]
//!
//! [[fault]]                 # see fault.rs
//! at_s = 10
//! kind = "partition"
//! target = "lock-holder"
//! for_s = 8
//!
//! [swarm]                   # see swarm.rs
//! kinds = ["partition", "crash"]
//! faults = [1, 4]
//! for_s = [1, 6]
//! ```
//!
//! Unknown keys are errors, and every error names `file:line:col` with a hint
//! ([`ScenarioError`]). Targets are resolved when the fault fires, not when the file is read.

mod error;
mod fault;
mod swarm;
mod target;
mod workload;

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use self::error::ScenarioError;
pub use self::fault::{Direction, ExpireMode, Fault, FaultKind};
pub use self::swarm::{Swarm, Targets};
pub use self::target::{Target, TARGET_NAMES};
pub use self::workload::{Role, Workload, BUILTIN_ROLES};

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
    /// `syncLimit`, in ticks: how long followers and leaders wait for a silent peer.
    pub sync_limit: u32,
    /// `initLimit`, in ticks: how long a sync and a prospective leader may take.
    pub init_limit: u32,
    /// `readonlymode.enabled` (with local sessions): a member that has no quorum serves
    /// read-only clients after a grace period (see [`crate::ensemble`]). Off by default.
    pub read_only: bool,
    /// Every message's latency, drawn uniformly from this range.
    pub latency: (Duration, Duration),
    /// The chance, per link and step, that a link drops its messages for a while.
    pub loss: f64,
    /// How long each seed runs, in simulated time.
    pub duration: Duration,
    /// How soon after the last fault ends the lock must change hands and a leader exist.
    pub liveness: Duration,
    /// The simulation's time step (turmoil's tick): every host runs once per step, timers
    /// and message deliveries land on step boundaries.
    pub step: Duration,
    /// The client workloads, in file order.
    pub workloads: Vec<Workload>,
    /// The fault timeline, sorted by time (file order among equal times).
    pub faults: Vec<Fault>,
    /// Random faults drawn per seed, if any.
    pub swarm: Option<Swarm>,
}

impl Scenario {
    /// Total number of workload clients (hosts `c1`..`cN`).
    pub fn client_count(&self) -> usize {
        self.workloads.iter().map(|w| w.count).sum()
    }

    /// What the workloads offer as fault targets.
    pub fn targets(&self) -> Targets {
        targets(&self.workloads, self.servers)
    }

    /// The scenario as TOML with `faults` as its whole timeline and no swarm (what `shrink`
    /// prints: a file that replays a shrunk swarm schedule).
    pub fn to_toml_with(&self, faults: &[Fault]) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "name = \"{}\"\n", self.name);
        let _ = writeln!(s, "[ensemble]");
        let _ = writeln!(s, "servers = {}", self.servers);
        let _ = writeln!(s, "tick_ms = {}", self.tick.as_millis());
        let _ = writeln!(
            s,
            "session_timeout_ms = {}",
            self.session_timeout.as_millis()
        );
        let _ = writeln!(s, "sync_limit = {}", self.sync_limit);
        let _ = writeln!(s, "init_limit = {}", self.init_limit);
        if self.read_only {
            let _ = writeln!(s, "read_only = true");
        }
        s.push('\n');
        let _ = writeln!(s, "[network]");
        let _ = writeln!(
            s,
            "latency_ms = [{}, {}]",
            self.latency.0.as_millis(),
            self.latency.1.as_millis()
        );
        let _ = writeln!(s, "loss = {}\n", self.loss);
        let _ = writeln!(s, "[run]");
        let _ = writeln!(s, "duration_s = {}", self.duration.as_secs());
        let _ = writeln!(s, "liveness_s = {}", self.liveness.as_secs());
        let _ = writeln!(s, "step_ms = {}", self.step.as_millis());
        for w in &self.workloads {
            let _ = writeln!(s, "\n[[workload]]");
            let _ = writeln!(s, "role = \"{}\"", w.role.name());
            let _ = writeln!(s, "count = {}", w.count);
            let _ = writeln!(s, "path = \"{}\"", w.path);
            let _ = writeln!(
                s,
                "hold_ms = [{}, {}]",
                w.hold.0.as_millis(),
                w.hold.1.as_millis()
            );
            if w.role == Role::Semaphore {
                let _ = writeln!(s, "leases = {}", w.leases);
            }
            if w.allow_read_only {
                let _ = writeln!(s, "allow_read_only = true");
            }
        }
        for f in faults {
            s.push('\n');
            s.push_str(&f.to_toml());
        }
        s
    }
}

/// The default simulation step. Profiling showed stepping every host's runtime dominating
/// a run's cost; 5 ms steps run a seed about 3.7 times faster than turmoil's 1 ms and stay
/// far below every timeout in play (ticks of 500 ms, sessions of seconds, 0-100 ms latency).
pub const DEFAULT_STEP_MS: u64 = 5;

/// `syncLimit` of the project's real ensemble (`scripts/zk`): 10 ticks.
pub const DEFAULT_SYNC_LIMIT: u32 = 10;
/// `initLimit` of the project's real ensemble (`scripts/zk`): 20 ticks.
pub const DEFAULT_INIT_LIMIT: u32 = 20;

/// The file being parsed, for locating errors.
pub(crate) struct Ctx<'t> {
    file: &'t str,
    text: &'t str,
    /// The user roles a workload may name besides the built-in ones.
    user_roles: &'t [&'t str],
}

impl Ctx<'_> {
    /// An error at `span` of the file.
    pub(crate) fn err(&self, span: Range<usize>, message: String, hint: &str) -> ScenarioError {
        ScenarioError::at(self.file, self.text, Some(span), message, hint)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    #[allow(dead_code)]
    description: Option<String>,
    ensemble: RawEnsemble,
    network: Option<RawNetwork>,
    run: RawRun,
    #[serde(default)]
    workload: Vec<workload::RawWorkload>,
    #[serde(default)]
    fault: Vec<fault::RawFault>,
    swarm: Option<swarm::RawSwarm>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnsemble {
    servers: Spanned<u64>,
    tick_ms: Option<Spanned<u64>>,
    session_timeout_ms: Option<Spanned<u64>>,
    sync_limit: Option<Spanned<u64>>,
    init_limit: Option<Spanned<u64>>,
    read_only: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    latency_ms: Option<Spanned<[u64; 2]>>,
    loss: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    duration_s: Spanned<u64>,
    liveness_s: Option<Spanned<u64>>,
    step_ms: Option<Spanned<u64>>,
}

/// Reads and parses the scenario file at `path`.
pub fn load(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
    load_with(path, &[])
}

/// Reads and parses the scenario file at `path`, whose workloads may also name the user
/// roles `user_roles` (see [`Role::User`]).
pub fn load_with(path: &std::path::Path, user_roles: &[&str]) -> Result<Scenario, ScenarioError> {
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
    parse_with(&file, &stem, &text, user_roles)
}

/// Parses scenario `text` read from `file` (named `default_name` unless it says otherwise).
pub fn parse(file: &str, default_name: &str, text: &str) -> Result<Scenario, ScenarioError> {
    parse_with(file, default_name, text, &[])
}

/// Parses scenario `text` like [`parse`], its workloads may also name the user roles
/// `user_roles` (see [`Role::User`]); any other role name is an error at its position.
pub fn parse_with(
    file: &str,
    default_name: &str,
    text: &str,
    user_roles: &[&str],
) -> Result<Scenario, ScenarioError> {
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
    let ctx = Ctx {
        file,
        text,
        user_roles,
    };

    let servers = *raw.ensemble.servers.get_ref();
    if !(1..=9).contains(&servers) {
        return Err(ctx.err(
            raw.ensemble.servers.span(),
            format!("servers = {servers} is out of range"),
            "use 1 to 9 servers",
        ));
    }
    let servers = servers as u8;
    let tick_ms = match &raw.ensemble.tick_ms {
        Some(t) if !(1..=60_000).contains(t.get_ref()) => {
            return Err(ctx.err(
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
            return Err(ctx.err(
                t.span(),
                format!("session_timeout_ms = {} is out of range", t.get_ref()),
                "ZooKeeper allows 2 to 20 ticks",
            ))
        }
        Some(t) => *t.get_ref(),
        None => 4000.clamp(2 * tick_ms, 20 * tick_ms),
    };
    let sync_limit = limit(
        &ctx,
        "sync_limit",
        &raw.ensemble.sync_limit,
        DEFAULT_SYNC_LIMIT,
    )?;
    let init_limit = limit(
        &ctx,
        "init_limit",
        &raw.ensemble.init_limit,
        DEFAULT_INIT_LIMIT,
    )?;
    let (latency, loss) = network(&ctx, raw.network)?;
    let duration_s = *raw.run.duration_s.get_ref();
    if !(1..=3600).contains(&duration_s) {
        return Err(ctx.err(
            raw.run.duration_s.span(),
            format!("duration_s = {duration_s} is out of range"),
            "use 1 to 3600 seconds",
        ));
    }
    let liveness_s = match &raw.run.liveness_s {
        Some(l) if *l.get_ref() == 0 || *l.get_ref() > duration_s => {
            return Err(ctx.err(
                l.span(),
                format!("liveness_s = {} is out of range", l.get_ref()),
                "use 1 second to run.duration_s",
            ))
        }
        Some(l) => *l.get_ref(),
        None => 20.min(duration_s),
    };
    let step_ms = match &raw.run.step_ms {
        Some(s) if !(1..=50).contains(s.get_ref()) => {
            return Err(ctx.err(
                s.span(),
                format!("step_ms = {} is out of range", s.get_ref()),
                "use 1 to 50 milliseconds",
            ))
        }
        Some(s) => *s.get_ref(),
        None => DEFAULT_STEP_MS,
    };

    let workloads = raw
        .workload
        .into_iter()
        .map(|w| workload::workload(&ctx, w))
        .collect::<Result<Vec<_>, _>>()?;
    if workloads.is_empty() {
        return Err(ctx.err(
            0..0,
            "the scenario has no [[workload]]: every checker would pass vacuously".to_owned(),
            "add a [[workload]] table with a role, a count and a path",
        ));
    }
    let clients: usize = workloads.iter().map(|w| w.count).sum();
    let targets = targets(&workloads, servers);
    let roles: Vec<Role> = workloads.iter().map(|w| w.role).collect();
    let mut faults = raw
        .fault
        .into_iter()
        .map(|f| fault::fault(&ctx, f, targets, &roles, clients, duration_s))
        .collect::<Result<Vec<_>, _>>()?;
    faults.sort_by_key(|f| f.at);
    let swarm = raw
        .swarm
        .map(|s| swarm::swarm(&ctx, s, duration_s))
        .transpose()?;

    Ok(Scenario {
        name: raw.name.unwrap_or_else(|| default_name.to_owned()),
        servers,
        tick: Duration::from_millis(tick_ms),
        session_timeout: Duration::from_millis(session_ms),
        sync_limit,
        init_limit,
        read_only: raw.ensemble.read_only.is_some_and(|r| *r.get_ref()),
        latency,
        loss,
        duration: Duration::from_secs(duration_s),
        liveness: Duration::from_secs(liveness_s),
        step: Duration::from_millis(step_ms),
        workloads,
        faults,
        swarm,
    })
}

/// What `workloads` on `servers` servers offer as fault targets.
fn targets(workloads: &[Workload], servers: u8) -> Targets {
    Targets {
        lock_holder: workloads.iter().any(|w| w.role.holds_lock()),
        leader_candidate: workloads.iter().any(|w| w.role.leads()),
        servers,
    }
}

/// `sync_limit` or `init_limit` of `[ensemble]`: a positive number of ticks.
fn limit(
    ctx: &Ctx<'_>,
    key: &str,
    raw: &Option<Spanned<u64>>,
    default: u32,
) -> Result<u32, ScenarioError> {
    match raw {
        Some(v) => match u32::try_from(*v.get_ref()) {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ctx.err(
                v.span(),
                format!("{key} = {} is out of range", v.get_ref()),
                "use 1 to 1000 ticks",
            )),
        },
        None => Ok(default),
    }
}

/// The largest `sync_limit` or `init_limit`, in ticks.
const MAX_LIMIT: u32 = 1000;

/// The `[network]` section (defaults: turmoil's 0 to 100 ms latency, no loss).
fn network(
    ctx: &Ctx<'_>,
    raw: Option<RawNetwork>,
) -> Result<((Duration, Duration), f64), ScenarioError> {
    let raw = raw.unwrap_or(RawNetwork {
        latency_ms: None,
        loss: None,
    });
    let latency = match &raw.latency_ms {
        Some(l) => {
            let [lo, hi] = *l.get_ref();
            if lo > hi || hi > 60_000 {
                return Err(ctx.err(
                    l.span(),
                    format!("latency_ms = [{lo}, {hi}] is not a range of 0 to 60000"),
                    "write [min, max] milliseconds with min <= max",
                ));
            }
            (Duration::from_millis(lo), Duration::from_millis(hi))
        }
        None => (Duration::ZERO, Duration::from_millis(100)),
    };
    let loss = match &raw.loss {
        Some(l) if !(0.0..=0.5).contains(l.get_ref()) => {
            return Err(ctx.err(
                l.span(),
                format!("loss = {} is out of range", l.get_ref()),
                "use 0 to 0.5",
            ))
        }
        Some(l) => *l.get_ref(),
        None => 0.0,
    };
    Ok((latency, loss))
}
