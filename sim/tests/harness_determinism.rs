//! Determinism of the harness: one scenario and seed run twice give byte-identical traces,
//! also with other simulations run in between. It runs in a process of its own, as one
//! test: simulations in parallel threads share tokio's process-wide task ids, the
//! cross-simulation leak first seen on issue 5 (see `runner::align_task_ids`).

use std::path::PathBuf;

use zkit_sim::runner;
use zkit_sim::scenario::{self, Scenario};

fn load(file: &str) -> Scenario {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    scenario::load(&dir.join(file)).unwrap_or_else(|e| panic!("{e}"))
}

fn same(file: &str, a: &str, b: &str) {
    if a != b {
        let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
        let i = (0..la.len().min(lb.len()))
            .find(|&i| la[i] != lb[i])
            .unwrap_or(la.len().min(lb.len()));
        panic!(
            "{file}: traces diverge at line {i}:\n{:#?}\n{:#?}",
            &la[i.saturating_sub(3)..(i + 3).min(la.len())],
            &lb[i.saturating_sub(3)..(i + 3).min(lb.len())]
        );
    }
}

/// One test, so nothing else spawns tasks in the process meanwhile (tokio's task ids are
/// process-wide: see `runner::align_task_ids`).
#[test]
fn same_seed_same_trace() {
    for file in [
        "lock_holder_partitioned.toml",
        "lock_holder_crashes.toml",
        "lock_holder_paused.toml",
        "leader_election_split_halves.toml",
        "swarm_lock.toml",
        "leader_paused.toml",
        "swarm_everything.toml",
    ] {
        let s = load(file);
        let a = runner::run(&s, 3).trace;
        let b = runner::run(&s, 3).trace;
        same(file, &a, &b);
        assert!(a.contains("fault: "));
    }
    // What `zkit-sim run` then `zkit-sim replay` need: a seed's trace does not depend on the
    // simulations run before it in the process. This sequence diverged at the leader's crash
    // before the runner aligned task ids.
    let p = load("lock_holder_partitioned.toml");
    let file = "lock_holder_crashes.toml";
    let s = load(file);
    let a = runner::run(&s, 3).trace;
    let _ = runner::run(&p, 3);
    let _ = runner::run(&p, 5);
    let _ = runner::run(&s, 4);
    let b = runner::run(&s, 3).trace;
    same(file, &a, &b);
}
