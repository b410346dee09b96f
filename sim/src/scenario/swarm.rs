//! The `[swarm]` section: instead of (or besides) a fixed timeline, every seed draws its own
//! fault schedule from the enabled fault kinds (swarm testing, as FoundationDB and
//! TigerBeetle do it), so thousands of seeds explore thousands of different schedules.
//!
//! ```toml
//! [swarm]
//! kinds = ["partition", "split", "crash", "expire", "pause", "hold", "latency", "loss", "lag"]
//! faults = [2, 8]     # how many faults a seed gets, drawn uniformly
//! for_s = [1, 8]      # how long each lasts
//! from_s = 2          # none starts before
//! until_s = 45        # every one has ended by then (the liveness window follows)
//! timeout_ms = [5, 400]  # with "cancel" in kinds: the range its calls' timeouts come from
//! every_variant = true   # also draw server pauses, expiry by timeout and waiter targets
//! ```
//!
//! `every_variant` is off by default, so a swarm written before those variants existed
//! draws the same schedules (and its pinned seeds replay) as it always did.

use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::Rng;
use serde::Deserialize;
use toml::Spanned;

use super::fault::{millis, timeout_range, Direction, ExpireMode, Fault, FaultKind};
use super::{Ctx, ScenarioError, Target};

/// A parsed `[swarm]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Swarm {
    /// The fault kinds a schedule draws from.
    pub kinds: Vec<FaultKind>,
    /// How many faults a schedule has (inclusive range).
    pub faults: (usize, usize),
    /// How long each fault lasts (inclusive range).
    pub lasts: (Duration, Duration),
    /// No fault starts before this.
    pub from: Duration,
    /// Every fault has ended by this.
    pub until: Duration,
    /// The range a drawn cancel fault's timeouts come from (with `cancel` in `kinds`).
    pub cancel: Option<(Duration, Duration)>,
    /// Whether to draw every variant of a kind: a pause of a server as well as of a client,
    /// an expiry by timeout as well as by takeover-and-close, and a lock waiter as well as
    /// the other client targets.
    pub every_variant: bool,
}

/// What the workloads offer as fault targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    /// Some client contends for a lock (`lock-holder` makes sense).
    pub lock_holder: bool,
    /// Some client runs for leadership (`leader-candidate` makes sense).
    pub leader_candidate: bool,
    /// The number of servers.
    pub servers: u8,
}

impl Swarm {
    /// Draws one seed's schedule, sorted by time.
    pub fn schedule(&self, targets: Targets, rng: &mut impl Rng) -> Vec<Fault> {
        let n = rng.random_range(self.faults.0..=self.faults.1);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let Some(&kind) = self.kinds.choose(rng) else {
                break;
            };
            // Whole milliseconds, so a schedule printed as TOML replays exactly.
            let ms = |d: Duration| d.as_millis() as u64;
            let lasts = rng.random_range(ms(self.lasts.0)..=ms(self.lasts.1));
            let latest = ms(self.until).saturating_sub(lasts).max(ms(self.from));
            let at = Duration::from_millis(rng.random_range(ms(self.from)..=latest));
            let lasts = Duration::from_millis(lasts);
            let clients = client_targets(targets, self.every_variant);
            let mut servers = vec![Target::LeaderServer, Target::RandomServer];
            if targets.servers >= 3 {
                servers.extend([Target::RandomFollower, Target::Minority]);
            }
            let pick = |rng: &mut _, pool: &[Target]| pool.choose(rng).copied();
            let mut fault = Fault {
                at,
                kind,
                target: None,
                lasts: Some(lasts),
                direction: Direction::Both,
                latency: None,
                rate: None,
                mode: ExpireMode::Close,
                timeout: None,
            };
            match kind {
                FaultKind::Partition => {
                    let both: Vec<Target> = clients.iter().chain(&servers).copied().collect();
                    fault.target = pick(rng, &both);
                    fault.direction = *[Direction::Both, Direction::Outbound, Direction::Inbound]
                        .choose(rng)
                        .unwrap_or(&Direction::Both);
                }
                FaultKind::Crash | FaultKind::Hold => {
                    let both: Vec<Target> = clients.iter().chain(&servers).copied().collect();
                    fault.target = pick(rng, &both);
                }
                FaultKind::Expire => {
                    fault.target = pick(rng, &clients);
                    fault.lasts = None;
                    if self.every_variant && rng.random_bool(0.5) {
                        // Cut off until the leader expires the session, `lasts` at most.
                        fault.mode = ExpireMode::Timeout;
                        fault.lasts = Some(lasts);
                    }
                }
                FaultKind::Pause if self.every_variant => {
                    let both: Vec<Target> = clients.iter().chain(&servers).copied().collect();
                    fault.target = pick(rng, &both);
                }
                FaultKind::Pause => fault.target = pick(rng, &clients),
                FaultKind::Cancel => {
                    fault.target = pick(rng, &clients);
                    fault.timeout = self.cancel;
                }
                FaultKind::Latency => {
                    fault.latency = Some(Duration::from_millis(rng.random_range(50..=1500)));
                    fault.target = pick(rng, &[Target::RandomClient, Target::RandomServer]);
                }
                FaultKind::Loss => {
                    fault.rate = Some(f64::from(rng.random_range(1u32..=20)) / 100.0);
                    fault.target = pick(rng, &[Target::RandomClient, Target::RandomServer]);
                }
                FaultKind::Lag => {
                    fault.target = Some(if targets.servers >= 3 {
                        Target::RandomFollower
                    } else {
                        Target::RandomServer
                    });
                }
                FaultKind::Split => {}
                // Not drawn (validated away): every drawn fault undoes itself.
                FaultKind::Heal | FaultKind::Restart => continue,
            }
            out.push(fault);
        }
        out.sort_by_key(|f| f.at);
        out
    }
}

fn client_targets(targets: Targets, every_variant: bool) -> Vec<Target> {
    let mut pool = vec![Target::RandomClient];
    if targets.lock_holder {
        pool.push(Target::LockHolder);
        if every_variant {
            pool.push(Target::Waiter);
        }
    }
    if targets.leader_candidate {
        pool.push(Target::LeaderCandidate);
    }
    pool
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSwarm {
    kinds: Spanned<Vec<FaultKind>>,
    faults: Spanned<[u64; 2]>,
    for_s: Spanned<[f64; 2]>,
    from_s: Option<Spanned<f64>>,
    until_s: Option<Spanned<f64>>,
    timeout_ms: Option<Spanned<Vec<i64>>>,
    every_variant: Option<bool>,
}

/// Checks the raw section against a run of `duration_s` seconds.
pub(super) fn swarm(ctx: &Ctx<'_>, s: RawSwarm, duration_s: u64) -> Result<Swarm, ScenarioError> {
    let kinds = s.kinds.get_ref().clone();
    if kinds.is_empty() {
        return Err(ctx.err(
            s.kinds.span(),
            "a swarm needs at least one fault kind".to_owned(),
            "list kinds, e.g. [\"partition\", \"crash\"]",
        ));
    }
    if let Some(k) = kinds
        .iter()
        .find(|k| matches!(k, FaultKind::Heal | FaultKind::Restart))
    {
        return Err(ctx.err(
            s.kinds.span(),
            format!("{} is not a swarm fault kind", k.name()),
            "every swarm fault undoes itself; list the faults, not their undoing",
        ));
    }
    let cancel = match (&s.timeout_ms, kinds.contains(&FaultKind::Cancel)) {
        (Some(range), true) => Some(timeout_range(ctx, range, duration_s)?),
        (Some(range), false) => {
            return Err(ctx.err(
                range.span(),
                "timeout_ms only applies to a swarm that draws cancel faults".to_owned(),
                "add \"cancel\" to kinds, or remove the key",
            ))
        }
        (None, true) => {
            return Err(ctx.err(
                s.kinds.span(),
                "a swarm that draws cancel faults needs their range of timeouts".to_owned(),
                "add timeout_ms = [MIN, MAX] (milliseconds, e.g. [5, 400])",
            ))
        }
        (None, false) => None,
    };
    let [lo, hi] = *s.faults.get_ref();
    if lo > hi || hi > 1000 {
        return Err(ctx.err(
            s.faults.span(),
            format!("faults = [{lo}, {hi}] is not a range of 0 to 1000"),
            "write [min, max] with min <= max <= 1000",
        ));
    }
    let [flo, fhi] = *s.for_s.get_ref();
    if !(flo.is_finite() && fhi.is_finite() && flo > 0.0 && flo <= fhi && fhi <= 3600.0) {
        return Err(ctx.err(
            s.for_s.span(),
            format!("for_s = [{flo}, {fhi}] is not a range of durations"),
            "write [min, max] seconds with 0 < min <= max <= 3600",
        ));
    }
    let time = |v: &Option<Spanned<f64>>, default: f64, key: &str| match v {
        Some(t)
            if !t.get_ref().is_finite()
                || *t.get_ref() < 0.0
                || *t.get_ref() > duration_s as f64 =>
        {
            Err(ctx.err(
                t.span(),
                format!("{key} = {} is outside the run", t.get_ref()),
                "use a time from 0 to run.duration_s",
            ))
        }
        Some(t) => Ok(*t.get_ref()),
        None => Ok(default),
    };
    let from = time(&s.from_s, 0.0, "from_s")?;
    let until = time(&s.until_s, duration_s as f64, "until_s")?;
    if until < from + fhi {
        let span = s.until_s.as_ref().map_or(s.for_s.span(), |u| u.span());
        return Err(ctx.err(
            span,
            format!(
                "until_s = {until} leaves no room for a fault of {fhi} s after from_s = {from}"
            ),
            "make until_s - from_s at least the longest for_s",
        ));
    }
    Ok(Swarm {
        kinds,
        faults: (lo as usize, hi as usize),
        lasts: (millis(flo), millis(fhi)),
        from: millis(from),
        until: millis(until),
        cancel,
        every_variant: s.every_variant.unwrap_or(false),
    })
}
