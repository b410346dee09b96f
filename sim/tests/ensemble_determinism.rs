//! Determinism of the replicated ensemble: the crash scenario run twice with one seed gives
//! the same server event log and the same client log, also when other simulations (other
//! seeds, a 5-server ensemble, recovery by snapshot) ran in between in the same process. It
//! runs in a process of its own, as one test, so nothing else spawns tasks meanwhile.

mod ensemble_common;

use ensemble_common::*;

fn same(a: &CrashRun, b: &CrashRun) {
    if let Some(i) =
        (0..a.servers.len().min(b.servers.len())).find(|&i| a.servers[i] != b.servers[i])
    {
        panic!(
            "server logs diverge at {i}:\n{:#?}\n{:#?}",
            &a.servers[i.saturating_sub(3)..(i + 5).min(a.servers.len())],
            &b.servers[i.saturating_sub(3)..(i + 5).min(b.servers.len())]
        );
    }
    assert_eq!(a.servers, b.servers);
    assert_eq!(a.clients, b.clients);
}

#[test]
fn same_seed_same_event_log_whatever_ran_before() {
    let _serial = serial();
    let a = crash_scenario(7);
    let b = crash_scenario(7);
    same(&a, &b);
    // Other simulations in the same process, then seed 7 again.
    for seed in [8, 9, 10] {
        crash_scenario(seed);
    }
    crash_scenario_of(11, 5);
    let _ = fsync_scenario(12, true);
    let c = crash_scenario(7);
    same(&a, &c);
}
