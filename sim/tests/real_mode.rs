//! Real mode's CI budget: shipped scenarios run against a real ZooKeeper 3.8 ensemble
//! behind the fault proxies, with the same workloads, checkers and coverage as in
//! simulation (`zkit-sim run --real`). `ZKIT_REAL_RUNS` (default 1) sets the runs per
//! scenario.
//!
//! These tests need Java and ZooKeeper (`scripts/zk install`); they never skip: when
//! ZooKeeper cannot start they fail with the reason. They run one at a time (a real
//! ensemble is three JVMs; two at once on a small machine would starve each other).

use std::path::PathBuf;
use std::sync::Mutex;

use zkit_sim::real::support::check_supported;
use zkit_sim::runner::real::{run_real, RealOptions};
use zkit_sim::runner::Outcome;
use zkit_sim::scenario::{self, Scenario};

/// Held by each test for its whole run: one real ensemble at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn shipped(file: &str) -> Scenario {
    scenario::load(&scenarios_dir().join(file)).unwrap_or_else(|e| panic!("{e}"))
}

fn runs() -> u64 {
    std::env::var("ZKIT_REAL_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Runs `scenario` once against a real ensemble; a failing run leaves its trace and the
/// members' logs under `target/zkit-sim/real/`.
fn real(scenario: &Scenario, run: u64, options: RealOptions) -> Outcome {
    let failure_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/zkit-sim/real")
        .join(format!("{}-run{run}", scenario.name));
    let options = RealOptions {
        failure_dir: Some(failure_dir),
        ..options
    };
    run_real(scenario, run, &options)
        .unwrap_or_else(|e| panic!("a real ZooKeeper must start for this test: {e}"))
}

/// The CI budget: four scenarios that between them use a client's pause, a split of the
/// ensemble, a lagging follower, an expiry by timeout, a waiter target and a server's
/// stop-the-world pause (SIGSTOP, then SIGCONT); each must pass every checker, fire every
/// fault, and provoke what it exists for.
#[test]
fn shipped_scenarios_pass_against_a_real_ensemble() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let budget: &[(&str, &[&str])] = &[
        (
            "lock_holder_paused.toml",
            &[
                "pauses",
                "expected overlaps (fenced)",
                "stale writes rejected",
            ],
        ),
        (
            "leader_election_split_halves.toml",
            &["fault:split", "leader changes"],
        ),
        (
            "leader_paused.toml",
            &[
                "fault:pause",
                "lock handoffs",
                "leader changes",
                "ensemble expiries",
            ],
        ),
        (
            "lagging_follower_waiters.toml",
            &[
                "fault:lag",
                "fault:expire",
                "ensemble expiries",
                "lock handoffs",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (file, must) in budget {
        let scenario = shipped(file);
        check_supported(&scenario).unwrap_or_else(|e| panic!("{e}"));
        for run in 0..runs() {
            let o = real(&scenario, run, RealOptions::default());
            let name = format!("{} run {run}", scenario.name);
            if !o.passed() {
                failures.push(format!("{name}: {:?}", o.violations));
            }
            if o.coverage.faults_skipped > 0 {
                failures.push(format!(
                    "{name}: {} faults skipped (no target)",
                    o.coverage.faults_skipped
                ));
            }
            let counts = format!("{}", o.coverage);
            for m in *must {
                let n = match m.strip_prefix("fault:") {
                    Some(kind) => o.coverage.by_kind.get(kind).copied().unwrap_or(0),
                    None => o.coverage.counts.get(m).copied().unwrap_or(0),
                };
                if n == 0 {
                    failures.push(format!("{name}: never provoked {m:?} ({counts})"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every shipped scenario is one real mode runs, or it is refused with the reason (packet
/// loss has no faithful counterpart on a real TCP link).
#[test]
fn every_shipped_scenario_runs_in_real_mode_or_is_refused_with_the_reason() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "toml")
                && p.file_name().is_some_and(|n| n != "regressions.toml")
        })
        .collect();
    files.sort();
    let mut refused = Vec::new();
    for f in &files {
        let s = scenario::load(f).unwrap_or_else(|e| panic!("{e}"));
        if let Err(e) = check_supported(&s) {
            assert!(e.to_string().contains("loss"), "{e}");
            refused.push(s.name);
        }
    }
    assert!(files.len() > 20, "only {} scenarios", files.len());
    assert_eq!(
        refused,
        ["swarm_lock"],
        "only the loss-drawing swarm is refused"
    );
}
