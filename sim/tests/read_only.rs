//! Read-only mode of the simulated ensemble (`EnsembleConfig::read_only`, ZooKeeper 3.8's
//! `readonlymode.enabled` with local sessions): three servers, two crashed, the survivor
//! serves read-only after its grace period. A client that allows read-only gets a new local
//! session there (`ConnectedReadOnly`), reads (multiRead too), and gets `NotReadOnly` for
//! writes, a multi and `sync`; a client that does not allow read-only, and a global session
//! opened before the crashes, cannot connect to it; `isro` says `ro`. Once the crashed servers restart, the survivor
//! shuts its read-only server down, the local session is expired on reconnect and the client
//! goes on in a new read-write session (the global session's client, cut off from every
//! member that would take it, has declared its session lost meanwhile).

mod ensemble_common;

use std::time::Duration;

use ensemble_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zkit::{Client, CreateMode, Error, Op, ReadOp, ReadResult, State};
use zkit_sim::ensemble::{Ensemble, EnsembleConfig};
use zkit_sim::net::TurmoilConnector;

const SESSION: Duration = Duration::from_secs(8);

/// A client of `host` that allows read-only servers (not yet connected).
fn read_only_client(host: &str, seed: u64) -> zkit::Builder {
    Client::builder(host)
        .connector(TurmoilConnector)
        .seed(seed)
        .session_timeout(SESSION)
        .allow_read_only(true)
        .renew_expired_session(true)
}

/// Notes every state `zk` goes through, with its session id, as `<who>: state <State>
/// 0x<session>`.
fn note_states(log: &Log, who: &'static str, zk: &Client) {
    let mut states = zk.state_changes();
    let info = zk.session_info();
    let log = log.clone();
    tokio::task::spawn_local(async move {
        while let Ok(state) = states.recv().await {
            let id = info.borrow().session_id;
            note(&log, who, format!("state {state:?} 0x{id:x}"));
        }
    });
}

/// The answer to the four-letter word `cmd` from `host`.
async fn four_letter(host: &str, cmd: &str) -> std::io::Result<String> {
    let mut s = turmoil::net::TcpStream::connect((host, 2181)).await?;
    s.write_all(cmd.as_bytes()).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

#[test]
fn a_member_without_quorum_serves_read_only_clients_in_local_sessions() {
    let _serial = serial();
    let seed = 7;
    let log: Log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let ens = Ensemble::new(EnsembleConfig {
        seed,
        read_only: true,
        ..EnsembleConfig::default()
    });
    let mut sim = sim(seed, 200);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    let leader = ens.leader().expect("a leader");
    let survivor = (1..=3).find(|&i| i != leader).expect("a follower");
    let host = format!("{}:2181", Ensemble::host(survivor));
    let credentials: Credentials = Default::default();

    // A global session on the survivor, opened while the ensemble has a quorum.
    let (l, h, c) = (log.clone(), host.clone(), credentials.clone());
    sim.client("global", async move {
        let zk = client(&h, 1).await?;
        note_states(&l, "global", &zk);
        create_retrying(&zk, "/ro").await?;
        zk.set_data("/ro", b"v1", None).await?;
        *c.borrow_mut() = Some(zk.session_credentials());
        note(&l, "global", format!("ready 0x{:x}", zk.session_id()));
        park(zk).await;
        Ok(())
    });
    if !step_until(&mut sim, Duration::from_secs(10), || {
        count(&log, "global: ready") == 1
    }) {
        fail(&ens, &log, "the global session");
    }
    let global = credentials.borrow().clone().expect("credentials").0;
    for id in (1..=3).filter(|&i| i != survivor) {
        ens.crash(&mut sim, id);
    }
    let read_only = || ens.status().get(&survivor).is_some_and(|s| s.read_only);
    if !step_until(&mut sim, Duration::from_secs(30), read_only) {
        fail(&ens, &log, "the survivor never served read-only");
    }
    let events = ens.events();
    let looked = events
        .iter()
        .rposition(|e| e.contains(&format!("zk{survivor}: looking")))
        .expect("the survivor looked for a leader");
    let started = events
        .iter()
        .position(|e| e.contains(&format!("zk{survivor}: read-only server started")))
        .expect("the read-only server started");
    assert!(looked < started, "{events:#?}");
    let at = |i: usize| -> u64 {
        events[i]
            .split_whitespace()
            .next()
            .and_then(|ms| ms.parse().ok())
            .expect("an event time")
    };
    assert_eq!(
        at(started) - at(looked),
        2000,
        "max(2 s, tickTime) after it started looking: {events:#?}"
    );

    // A client that does not allow read-only is refused; so is the global session, even
    // from a client that allows read-only.
    let (l, h) = (log.clone(), host.clone());
    sim.client("plain", async move {
        match client(&h, 2).await {
            Err(Error::Timeout(_)) => note(&l, "plain", "refused".to_owned()),
            Ok(zk) => {
                note(&l, "plain", format!("connected {:?}", zk.state()));
                park(zk).await;
            }
            Err(e) => note(&l, "plain", format!("failed: {e}")),
        }
        Ok(())
    });
    let (l, h, c) = (log.clone(), host.clone(), credentials.clone());
    sim.client("resume", async move {
        let (id, password) = c.borrow().clone().expect("credentials");
        let attempt = read_only_client(&h, 3)
            .renew_expired_session(false)
            .resume_session(id, &password)
            .connect()
            .await;
        match attempt {
            Err(Error::Timeout(_)) => note(&l, "resume", "refused".to_owned()),
            Ok(zk) => {
                note(&l, "resume", format!("connected {:?}", zk.state()));
                park(zk).await;
            }
            Err(e) => note(&l, "resume", format!("failed: {e}")),
        }
        Ok(())
    });

    // A client that allows read-only: a local session, reads, NOTREADONLY for writes.
    let (l, h) = (log.clone(), host.clone());
    sim.client("ro", async move {
        let zk = read_only_client(&h, 4).connect().await?;
        note_states(&l, "ro", &zk);
        note(
            &l,
            "ro",
            format!("connected {:?} 0x{:x}", zk.state(), zk.session_id()),
        );
        let (data, _) = zk.get_data("/ro").await?;
        note(&l, "ro", format!("read {}", String::from_utf8_lossy(&data)));
        let children = zk.get_children("/").await?;
        note(&l, "ro", format!("children of / {}", children.len()));
        match zk.create("/ro/x", b"", CreateMode::Persistent).await {
            Err(Error::NotReadOnly { .. }) => note(&l, "ro", "create refused".to_owned()),
            other => note(&l, "ro", format!("create answered {other:?}")),
        }
        match zk.set_data("/ro", b"v2", None).await {
            Err(Error::NotReadOnly { .. }) => note(&l, "ro", "setData refused".to_owned()),
            other => note(&l, "ro", format!("setData answered {other:?}")),
        }
        match zk
            .multi(&[Op::check("/ro", None), Op::delete("/ro", None)])
            .await
        {
            Err(Error::NotReadOnly { .. }) => note(&l, "ro", "multi refused".to_owned()),
            other => note(&l, "ro", format!("multi answered {other:?}")),
        }
        match zk
            .multi_read(&[ReadOp::GetData("/ro".into())])
            .await?
            .as_slice()
        {
            [ReadResult::Data(data, _)] => note(
                &l,
                "ro",
                format!("multiRead {}", String::from_utf8_lossy(data)),
            ),
            other => note(&l, "ro", format!("multiRead answered {other:?}")),
        }
        match zk.sync("/ro").await {
            Err(Error::NotReadOnly { .. }) => note(&l, "ro", "sync refused".to_owned()),
            other => note(&l, "ro", format!("sync answered {other:?}")),
        }
        let h = h.split(':').next().unwrap_or_default().to_owned();
        let isro = four_letter(&h, "isro").await?;
        note(&l, "ro", format!("isro {isro}"));
        note(&l, "ro", "done".to_owned());
        // Back in a read-write session: writes work again.
        zk.wait_for_state(|s| s == State::Connected).await;
        create_retrying(&zk, "/ro/after").await?;
        note(&l, "ro", format!("wrote in 0x{:x}", zk.session_id()));
        park(zk).await;
        Ok(())
    });
    if !step_until(&mut sim, Duration::from_secs(30), || {
        count(&log, "ro: done") == 1 && count(&log, "plain: ") >= 1 && count(&log, "resume: ") >= 1
    }) {
        fail(&ens, &log, "the read-only phase");
    }
    let lines = log.borrow().clone();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(has("ro: connected ConnectedReadOnly"), "{lines:#?}");
    assert!(has("ro: read v1"), "{lines:#?}");
    assert!(has("ro: create refused"), "{lines:#?}");
    assert!(has("ro: setData refused"), "{lines:#?}");
    assert!(has("ro: sync refused"), "{lines:#?}");
    assert!(has("ro: multi refused"), "{lines:#?}");
    assert!(has("ro: multiRead v1"), "{lines:#?}");
    assert!(has("ro: isro ro"), "{lines:#?}");
    assert!(has("plain: refused"), "{lines:#?}");
    assert!(has("resume: refused"), "{lines:#?}");
    let local = lines
        .iter()
        .find_map(|l| l.split("ro: connected ConnectedReadOnly 0x").nth(1))
        .and_then(|id| i64::from_str_radix(id, 16).ok())
        .expect("the local session's id");
    assert_ne!(local, global, "a new session");
    assert_eq!(
        local >> 56,
        i64::from(survivor),
        "a session of the survivor"
    );
    assert!(
        !has("global: state Connected"),
        "the global session reconnected to the read-only member: {lines:#?}"
    );

    // The others come back: the survivor leaves read-only mode and serves read-write.
    for id in (1..=3).filter(|&i| i != survivor) {
        ens.bounce(&mut sim, id);
    }
    if !step_until(&mut sim, Duration::from_secs(30), || {
        ens.converged() && count(&log, "ro: wrote in") == 1
    }) {
        fail(&ens, &log, "after the restarts");
    }
    let lines = log.borrow().clone();
    let events = ens.events();
    assert!(
        events
            .iter()
            .any(|e| e.contains(&format!("zk{survivor}: read-only server shut down"))),
        "{events:#?}"
    );
    assert!(!ens.status().values().any(|s| s.read_only));
    let lost = lines
        .iter()
        .position(|l| l.contains(&format!("ro: state Lost 0x{local:x}")));
    let renewed = lines.iter().position(|l| {
        l.contains("ro: state Connected 0x") && !l.ends_with(&format!("0x{local:x}"))
    });
    assert!(
        lost.is_some() && renewed.is_some() && lost < renewed,
        "the local session expires and a new read-write one follows: {lines:#?}"
    );
    // The global session's client never got back in: it declared the session lost on its
    // own timer while only the read-only member was up.
    assert!(
        !lines.iter().any(|l| l.contains("global: state Connected")),
        "{lines:#?}"
    );
    assert!(has_line(
        &lines,
        &format!("global: state Lost 0x{global:x}")
    ));
    assert!(ens.check().is_empty(), "{:#?}", ens.check());
}

/// Whether a line of `lines` contains `needle`.
fn has_line(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

/// Without `read_only` a member without quorum stays silent: no read-only server starts.
#[test]
fn without_read_only_mode_a_member_without_quorum_serves_nobody() {
    let _serial = serial();
    let seed = 8;
    let ens = ensemble(seed);
    let mut sim = sim(seed, 60);
    ens.register(&mut sim);
    assert!(step_until(&mut sim, Duration::from_secs(10), || ens.converged()));
    let survivor = 1;
    for id in 2..=3 {
        ens.crash(&mut sim, id);
    }
    let log: Log = Default::default();
    let l = log.clone();
    sim.client("ro", async move {
        match read_only_client("zk1:2181", 4).connect().await {
            Err(Error::Timeout(_)) => note(&l, "ro", "refused".to_owned()),
            Ok(zk) => {
                note(&l, "ro", format!("connected {:?}", zk.state()));
                park(zk).await;
            }
            Err(e) => note(&l, "ro", format!("failed: {e}")),
        }
        Ok(())
    });
    if !step_until(&mut sim, Duration::from_secs(30), || {
        count(&log, "ro: ") == 1
    }) {
        fail(&ens, &log, "the read-only client");
    }
    assert_eq!(count(&log, "ro: refused"), 1, "{:#?}", log.borrow());
    assert!(!ens.status().get(&survivor).is_some_and(|s| s.read_only));
    assert!(!ens.events().iter().any(|e| e.contains("read-only")));
}
