//! Determinism of the replicated ensemble: the crash scenario run twice with one seed gives
//! the same server event log and the same client log. It runs in a process of its own: after
//! other simulations ran in the same process the logs differed (see the report on issue 5).

mod ensemble_common;

use ensemble_common::*;

#[test]
fn same_seed_same_event_log() {
    let _serial = serial();
    let a = crash_scenario(7);
    let b = crash_scenario(7);
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
