//! The `[[fault]]` timeline entries: what a fault does, when, to what, for how long.
//!
//! ```toml
//! [[fault]]
//! at_s = 10
//! kind = "partition"        # see FaultKind
//! target = "lock-holder"    # see Target
//! direction = "inbound"     # partitions only: both (default) | outbound | inbound
//! for_s = 5                 # optional: undo it after this long (required for pause, cancel,
//!                           # hold and lag; for an expire by timeout, a cap)
//! mode = "timeout"          # expire only: close (default, a takeover-and-close) | timeout
//!                           # (the client is cut off until the leader expires its session)
//! timeout_ms = [5, 40]      # cancel only: the range its calls' timeouts are drawn from
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::target::TARGET_NAMES;
use super::{Ctx, Role, ScenarioError, Target, Targets};

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Cut the target off from every host it talks to (in one or both directions).
    Partition,
    /// Split the servers into two halves (a minority and a majority), each taking half the
    /// clients, and cut every link between the halves.
    Split,
    /// Repair every partition, and undo latency and loss (the target is ignored).
    Heal,
    /// Crash the target's host.
    Crash,
    /// Restart the target's host (a target resolved by an earlier crash means the same host).
    Restart,
    /// Expire the target client's session on the ensemble (another connection takes the
    /// session over and closes it, as Curator's `KillSession` does).
    Expire,
    /// A stop-the-world pause (a long GC). A client target: its application stops and its
    /// messages are held, so its session runs out while it keeps believing what it
    /// believed. A server target: its process freezes (no request, replication, heartbeat
    /// or session expiry) and its messages are held; once it resumes it acts on stale
    /// timers, e.g. a leader expiring every session it has not heard from.
    Pause,
    /// Hold every message to and from the target until the fault ends, then deliver them
    /// all (a stalled switch port; a server frozen in a long GC pause).
    Hold,
    /// Set the latency of the target's links (every link without a target).
    Latency,
    /// Drop messages on the target's links at a rate (every link without a target).
    Loss,
    /// Hold the target server's links to the other servers (replication and election), not
    /// to clients, until the fault ends: a follower keeps serving clients from a tree that
    /// falls behind (until `syncLimit` ticks pass and it gives up on its leader).
    Lag,
    /// While it lasts, the target client's application wraps each recipe call (acquire,
    /// release, enter, leave, close) in a timeout drawn from `timeout_ms`, as users wrap
    /// futures in `tokio::time::timeout` or `select!`: a call still running when its timeout
    /// fires is cancelled (its future dropped). The recipe must clean up on its own.
    Cancel,
}

impl FaultKind {
    /// The kind's name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Split => "split",
            FaultKind::Heal => "heal",
            FaultKind::Crash => "crash",
            FaultKind::Restart => "restart",
            FaultKind::Expire => "expire",
            FaultKind::Pause => "pause",
            FaultKind::Hold => "hold",
            FaultKind::Latency => "latency",
            FaultKind::Loss => "loss",
            FaultKind::Lag => "lag",
            FaultKind::Cancel => "cancel",
        }
    }
}

/// Which way a partition cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Nothing gets through either way.
    #[default]
    Both,
    /// The target's messages are dropped; it still hears the others.
    Outbound,
    /// The target hears nothing; its own messages still arrive.
    Inbound,
}

/// How an `expire` fault ends the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ExpireMode {
    /// Another connection takes the session over and closes it (Curator's `KillSession`).
    #[default]
    Close,
    /// The client's traffic is cut off until the leader expires the session on its own
    /// timer (then the link is repaired).
    Timeout,
}

/// One fault of the timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    /// When it fires, from the start of the workload.
    pub at: Duration,
    /// What it does.
    pub kind: FaultKind,
    /// What it hits (`None`: nothing in particular, e.g. `heal`, or every link).
    pub target: Option<Target>,
    /// Undo it after this long (a partition heals, a crashed host restarts, a pause ends,
    /// latency and loss return to normal).
    pub lasts: Option<Duration>,
    /// Which way a partition cuts.
    pub direction: Direction,
    /// A latency fault's link latency.
    pub latency: Option<Duration>,
    /// A loss fault's drop rate, in (0, 1].
    pub rate: Option<f64>,
    /// How an expire fault ends the session.
    pub mode: ExpireMode,
    /// A cancel fault's range of call timeouts (inclusive).
    pub timeout: Option<(Duration, Duration)>,
}

impl Fault {
    /// The fault as a `[[fault]]` TOML table (what `shrink` prints).
    pub fn to_toml(&self) -> String {
        let mut s = String::from("[[fault]]\n");
        let _ = writeln!(s, "at_s = {}", secs(self.at));
        let _ = writeln!(s, "kind = \"{}\"", self.kind.name());
        if let Some(t) = self.target {
            let _ = writeln!(s, "target = \"{t}\"");
        }
        match self.direction {
            Direction::Both => {}
            Direction::Outbound => s.push_str("direction = \"outbound\"\n"),
            Direction::Inbound => s.push_str("direction = \"inbound\"\n"),
        }
        if let Some(l) = self.latency {
            let _ = writeln!(s, "ms = {}", l.as_millis());
        }
        if let Some(r) = self.rate {
            let _ = writeln!(s, "rate = {r}");
        }
        if self.mode == ExpireMode::Timeout {
            s.push_str("mode = \"timeout\"\n");
        }
        if let Some((lo, hi)) = self.timeout {
            let _ = writeln!(s, "timeout_ms = [{}, {}]", lo.as_millis(), hi.as_millis());
        }
        if let Some(l) = self.lasts {
            let _ = writeln!(s, "for_s = {}", secs(l));
        }
        s
    }
}

/// Seconds from a scenario file, to the millisecond (the resolution of every time in it).
pub(super) fn millis(secs: f64) -> Duration {
    Duration::from_millis((secs * 1000.0).round() as u64)
}

/// Seconds as TOML writes them back (`5`, `2.5`).
fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}", ms / 1000)
    } else {
        format!("{}", ms as f64 / 1000.0)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    at_s: Spanned<f64>,
    kind: Spanned<FaultKind>,
    target: Option<Spanned<String>>,
    direction: Option<Spanned<Direction>>,
    for_s: Option<Spanned<f64>>,
    ms: Option<Spanned<u64>>,
    rate: Option<Spanned<f64>>,
    mode: Option<Spanned<ExpireMode>>,
    timeout_ms: Option<Spanned<Vec<i64>>>,
}

/// Checks one raw fault against the scenario (what its workloads offer as `targets`, their
/// `roles`, `clients` clients, a run of `duration_s` seconds).
pub(super) fn fault(
    ctx: &Ctx<'_>,
    f: RawFault,
    targets: Targets,
    roles: &[Role],
    clients: usize,
    duration_s: u64,
) -> Result<Fault, ScenarioError> {
    let servers = targets.servers;
    let at = *f.at_s.get_ref();
    if !at.is_finite() || at < 0.0 || at >= duration_s as f64 {
        return Err(ctx.err(
            f.at_s.span(),
            format!("at_s = {at} is outside the run"),
            "use a time from 0 to below run.duration_s",
        ));
    }
    let kind = *f.kind.get_ref();
    let target = match &f.target {
        None => None,
        Some(t) => {
            let target = Target::parse(t.get_ref())
                .map_err(|m| ctx.err(t.span(), m, &format!("use {TARGET_NAMES}")))?;
            match target {
                Target::Client(n) | Target::FollowerOf(n) if n > clients => {
                    return Err(ctx.err(
                        t.span(),
                        format!("there is no client {n}"),
                        &format!("the workloads have clients 1 to {clients}"),
                    ))
                }
                Target::Server(n) if n > servers => {
                    return Err(ctx.err(
                        t.span(),
                        format!("there is no server {n}"),
                        &format!("the ensemble has servers 1 to {servers}"),
                    ))
                }
                Target::LockHolder | Target::Waiter if !targets.lock_holder => {
                    return Err(ctx.err(
                        t.span(),
                        format!("target {target}, but no workload contends for a lock"),
                        "add a lock workload, or target \"random-client\" or \"client:N\"",
                    ))
                }
                Target::LeaderCandidate if !targets.leader_candidate => {
                    return Err(ctx.err(
                        t.span(),
                        "target leader-candidate, but no workload runs for leadership".to_owned(),
                        "add a leader-latch or leader-selector workload, or target \
                         \"random-client\" or \"client:N\"",
                    ))
                }
                Target::Role(role) if !roles.contains(&role) => {
                    let mut names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
                    names.dedup();
                    return Err(ctx.err(
                        t.span(),
                        format!(
                            "target {target}, but no workload has role {:?}",
                            role.name()
                        ),
                        &format!("name a role of the workloads: {}", names.join(", ")),
                    ));
                }
                Target::RandomFollower | Target::Minority if servers < 3 => {
                    return Err(ctx.err(
                        t.span(),
                        format!("target {target} needs at least 3 servers"),
                        "name a server, or use more servers",
                    ))
                }
                _ => Some((target, t.span())),
            }
        }
    };
    let needs_target = matches!(
        kind,
        FaultKind::Partition
            | FaultKind::Crash
            | FaultKind::Restart
            | FaultKind::Expire
            | FaultKind::Pause
            | FaultKind::Hold
            | FaultKind::Lag
            | FaultKind::Cancel
    );
    if needs_target && target.is_none() {
        return Err(ctx.err(
            f.kind.span(),
            format!("a {} fault needs a target", kind.name()),
            &format!("add target = one of {TARGET_NAMES}"),
        ));
    }
    if let Some((t, span)) = &target {
        if matches!(kind, FaultKind::Expire | FaultKind::Cancel) && !t.is_client() {
            return Err(ctx.err(
                span.clone(),
                format!("a {} fault needs a client target, not {t}", kind.name()),
                "use \"lock-holder\", \"leader-candidate\", \"waiter\", \"random-client\", \
                 \"client:N\" or \"role:NAME\"",
            ));
        }
        if kind == FaultKind::Lag && !t.is_server() {
            return Err(ctx.err(
                span.clone(),
                format!("a lag fault needs a server target, not {t}"),
                "use \"random-follower\" or \"server:N\"",
            ));
        }
    }
    let mode = match &f.mode {
        Some(m) if kind != FaultKind::Expire => {
            return Err(ctx.err(
                m.span(),
                "mode only applies to an expire fault".to_owned(),
                "remove the key",
            ))
        }
        Some(m) => *m.get_ref(),
        None => ExpireMode::Close,
    };
    let direction = match &f.direction {
        Some(d) if kind != FaultKind::Partition => {
            return Err(ctx.err(
                d.span(),
                "direction only applies to a partition".to_owned(),
                "remove the key",
            ))
        }
        Some(d) => *d.get_ref(),
        None => Direction::Both,
    };
    let lasts = match &f.for_s {
        Some(l)
            if matches!(kind, FaultKind::Heal | FaultKind::Restart)
                || (kind == FaultKind::Expire && mode == ExpireMode::Close) =>
        {
            return Err(ctx.err(
                l.span(),
                format!("a {} fault cannot last", kind.name()),
                "remove for_s",
            ))
        }
        Some(l) if !l.get_ref().is_finite() || *l.get_ref() <= 0.0 || *l.get_ref() > 3600.0 => {
            return Err(ctx.err(
                l.span(),
                format!("for_s = {} is out of range", l.get_ref()),
                "use more than 0 and at most 3600 seconds",
            ))
        }
        Some(l) => Some(millis(*l.get_ref())),
        None if matches!(kind, FaultKind::Pause | FaultKind::Hold | FaultKind::Lag) => {
            return Err(ctx.err(
                f.kind.span(),
                format!("a {} needs to say how long it lasts", kind.name()),
                "add for_s = SECONDS (longer than the session timeout to let it expire)",
            ))
        }
        None if kind == FaultKind::Cancel => {
            return Err(ctx.err(
                f.kind.span(),
                "a cancel needs to say how long it lasts".to_owned(),
                "add for_s = SECONDS (the window in which the target's calls are timed out)",
            ))
        }
        None => None,
    };
    let latency = match (&f.ms, kind) {
        (Some(ms), FaultKind::Latency) if (1..=60_000).contains(ms.get_ref()) => {
            Some(Duration::from_millis(*ms.get_ref()))
        }
        (Some(ms), FaultKind::Latency) => {
            return Err(ctx.err(
                ms.span(),
                format!("ms = {} is out of range", ms.get_ref()),
                "use 1 to 60000 milliseconds",
            ))
        }
        (Some(ms), _) => {
            return Err(ctx.err(
                ms.span(),
                "ms only applies to a latency fault".to_owned(),
                "remove the key",
            ))
        }
        (None, FaultKind::Latency) => {
            return Err(ctx.err(
                f.kind.span(),
                "a latency fault needs its latency".to_owned(),
                "add ms = MILLISECONDS",
            ))
        }
        (None, _) => None,
    };
    let rate = match (&f.rate, kind) {
        (Some(r), FaultKind::Loss) if *r.get_ref() > 0.0 && *r.get_ref() <= 1.0 => {
            Some(*r.get_ref())
        }
        (Some(r), FaultKind::Loss) => {
            return Err(ctx.err(
                r.span(),
                format!("rate = {} is out of range", r.get_ref()),
                "use a rate above 0 and at most 1",
            ))
        }
        (Some(r), _) => {
            return Err(ctx.err(
                r.span(),
                "rate only applies to a loss fault".to_owned(),
                "remove the key",
            ))
        }
        (None, FaultKind::Loss) => {
            return Err(ctx.err(
                f.kind.span(),
                "a loss fault needs its rate".to_owned(),
                "add rate = FRACTION (e.g. 0.05)",
            ))
        }
        (None, _) => None,
    };
    let timeout = cancel_timeout(ctx, &f, kind, duration_s)?;
    Ok(Fault {
        at: millis(at),
        kind,
        target: target.map(|(t, _)| t),
        lasts,
        direction,
        latency,
        rate,
        mode,
        timeout,
    })
}

/// The most a cancel fault's timeout may be: a call running longer than this is not being
/// raced by a timeout any user would write.
const MAX_CANCEL_TIMEOUT_MS: i64 = 60_000;

/// A cancel fault's `timeout_ms = [lo, hi]`: required for a cancel, refused for any other
/// kind. The range must be 1 ms or more (a 0 ms timeout cancels every call before it
/// sends anything: nothing is raced), low to high, and able to fire within the run (a
/// timeout no shorter than the run never cancels anything).
fn cancel_timeout(
    ctx: &Ctx<'_>,
    f: &RawFault,
    kind: FaultKind,
    duration_s: u64,
) -> Result<Option<(Duration, Duration)>, ScenarioError> {
    let range = match (&f.timeout_ms, kind) {
        (Some(r), FaultKind::Cancel) => r,
        (Some(r), _) => {
            return Err(ctx.err(
                r.span(),
                "timeout_ms only applies to a cancel fault".to_owned(),
                "remove the key",
            ))
        }
        (None, FaultKind::Cancel) => {
            return Err(ctx.err(
                f.kind.span(),
                "a cancel fault needs its range of timeouts".to_owned(),
                "add timeout_ms = [MIN, MAX] (milliseconds, e.g. [5, 40])",
            ))
        }
        (None, _) => return Ok(None),
    };
    timeout_range(ctx, range, duration_s).map(Some)
}

/// Checks a `timeout_ms = [lo, hi]` range of cancel timeouts against a run of `duration_s`
/// seconds (a cancel fault's, or a swarm's that draws cancels).
pub(super) fn timeout_range(
    ctx: &Ctx<'_>,
    range: &Spanned<Vec<i64>>,
    duration_s: u64,
) -> Result<(Duration, Duration), ScenarioError> {
    let hint = "write timeout_ms = [MIN, MAX] with 1 <= MIN <= MAX milliseconds";
    let &[lo, hi] = range.get_ref().as_slice() else {
        return Err(ctx.err(
            range.span(),
            format!(
                "timeout_ms has {} values, not a range [MIN, MAX]",
                range.get_ref().len()
            ),
            hint,
        ));
    };
    if lo < 0 || hi < 0 {
        return Err(ctx.err(
            range.span(),
            format!("timeout_ms = [{lo}, {hi}] has a negative timeout"),
            hint,
        ));
    }
    if lo > hi {
        return Err(ctx.err(
            range.span(),
            format!("timeout_ms = [{lo}, {hi}] is reversed"),
            &format!("write it low to high: [{hi}, {lo}]"),
        ));
    }
    if lo == 0 {
        return Err(ctx.err(
            range.span(),
            format!("timeout_ms = [{lo}, {hi}] allows a 0 ms timeout"),
            "a 0 ms timeout cancels a call before it sends anything; start the range at 1",
        ));
    }
    let run_ms = i64::try_from(duration_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    if lo >= run_ms.min(MAX_CANCEL_TIMEOUT_MS + 1) {
        return Err(ctx.err(
            range.span(),
            format!("timeout_ms = [{lo}, {hi}] is vacuous: no call is cancelled within it"),
            &format!(
                "use timeouts below the run's {duration_s} s and at most \
                 {MAX_CANCEL_TIMEOUT_MS} ms"
            ),
        ));
    }
    if hi > MAX_CANCEL_TIMEOUT_MS {
        return Err(ctx.err(
            range.span(),
            format!("timeout_ms = [{lo}, {hi}] is out of range"),
            &format!("use at most {MAX_CANCEL_TIMEOUT_MS} milliseconds"),
        ));
    }
    let ms = |v: i64| Duration::from_millis(v.unsigned_abs());
    Ok((ms(lo), ms(hi)))
}
