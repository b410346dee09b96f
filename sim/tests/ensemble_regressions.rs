//! Regressions of the replicated ensemble: each a directed scenario of a failure that a
//! swarm run found, failing before its fix.

mod ensemble_common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ensemble_common::*;
use zkit_sim::ensemble::Ensemble;

/// Writers in flight at once in the regression below.
const WRITERS: u64 = 24;

/// Found by `swarm_lock` seeds 6, 52 and 121 ("server 2 diverges from the committed
/// history", "server 2's snapshot ... is not the committed history").
///
/// The leader has the lower id, so it is the side that dials. A follower's outbound link to
/// it is cut while a client writes: the leader stops hearing the follower, drops the silent
/// link and dials again at once, and the proposals it sends before the new link is up are
/// dropped. The follower still hears the leader; it saw its old link end and the new one
/// come up within one tick, so it never found its leader silent, stayed synced, logged the
/// next proposal over the hole, acked it, and applied the commits without the missing
/// transactions. Now a sync lasts as long as its link: the follower looks again and the
/// leader syncs it again.
#[test]
fn a_follower_whose_link_to_the_leader_is_replaced_syncs_again() {
    let _serial = serial();
    let seed = 7;
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let ens = ensemble(seed);
    let mut sim = sim(seed, 120);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    // The first leader is the highest id. Crash it: the other two elect the higher of them,
    // and the crashed server comes back as a follower with an id above its leader's.
    let first = ens.leader().expect("leader");
    ens.crash(&mut sim, first);
    let other_leader = || ens.leader().filter(|&l| l != first);
    if !step_until(&mut sim, Duration::from_secs(10), || {
        other_leader().is_some()
    }) {
        fail(&ens, &log, "no leader after the crash");
    }
    ens.bounce(&mut sim, first);
    if !step_until(&mut sim, Duration::from_secs(10), || ens.converged()) {
        fail(&ens, &log, "no convergence after the restart");
    }
    let leader = ens.leader().expect("leader");
    let Some(follower) = (leader + 1..=3).next() else {
        panic!("no follower above leader zk{leader}: {:#?}", ens.events());
    };
    let port = ens.config().server.client_port;
    let leader_host = format!("{}:{port}", Ensemble::host(leader));
    let l = log.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_writers = stop.clone();
    sim.client("w", async move {
        let zk = client(&leader_host, 1).await?;
        create_retrying(&zk, "/w").await?;
        // Writes in flight all the time (one session's writes go one at a time, so from
        // several sessions), so some are proposed while the leader has no link.
        let mut writers = Vec::new();
        for t in 0..WRITERS {
            let (host, stop) = (leader_host.clone(), stop_writers.clone());
            let zk = client(&host, 10 + t).await?;
            writers.push(tokio::spawn(async move {
                let mut k = 0;
                while !stop.load(Ordering::Relaxed) {
                    write(&zk, &format!("t{t}"), k).await?;
                    k += 1;
                }
                zkit::Result::Ok((zk, k))
            }));
        }
        note(&l, "w", "writing".to_owned());
        let mut total = 0;
        let mut sessions = vec![zk];
        for w in writers {
            let wrote: zkit::Result<(zkit::Client, usize)> = w.await?;
            let (zk, k) = wrote?;
            sessions.push(zk);
            total += k;
        }
        note(&l, "w", format!("wrote {total}"));
        for zk in sessions {
            finish(zk).await;
        }
        Ok(())
    });
    if !step_until(&mut sim, Duration::from_secs(10), || {
        count(&log, "w: writing") == 1
    }) {
        fail(&ens, &log, "the writer did not start");
    }
    let (f, l) = (Ensemble::host(follower), Ensemble::host(leader));
    sim.partition_oneway(f.as_str(), l.as_str());
    step_until(&mut sim, Duration::from_secs(5), || false);
    sim.repair_oneway(f.as_str(), l.as_str());
    stop.store(true, Ordering::Relaxed);
    if !step_until(&mut sim, Duration::from_secs(10), || {
        count(&log, "w: wrote") == 1 && ens.converged()
    }) {
        fail(&ens, &log, "no convergence after healing");
    }
    let events = ens.events();
    let violations = ens.check();
    assert!(
        violations.is_empty(),
        "{violations:#?}\nservers: {events:#?}\nclients: {:#?}",
        log.borrow()
    );
    let relinked = format!("zk{follower}: looking (link to the leader lost)");
    assert!(
        events.iter().any(|e| e.contains(&relinked)),
        "{relinked}: {events:#?}"
    );
}
