//! Every client operation against a real ZooKeeper 3.8, with its error codes: each test runs
//! once against a standalone server and once against a 3-node ensemble.

mod common;

use std::time::Duration;

use common::{chrooted, connect};
use zkit_tests::ZkServer;

/// Runs each listed test against the shared standalone server and the shared ensemble.
macro_rules! on_standalone_and_ensemble {
    ($($name:ident),* $(,)?) => {
        mod standalone {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::common::standalone()).await
                }
            )*
        }
        mod ensemble {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::common::ensemble()).await
                }
            )*
        }
    };
}

on_standalone_and_ensemble!(
    create_in_every_mode,
    error_codes_name_the_path,
    reads_writes_and_metadata,
    parents_and_recursive_delete,
    multi_applies_all_or_nothing,
    one_shot_watches_fire_once_with_the_right_event,
    persistent_watches_stream_until_dropped,
    digest_acl_needs_the_credential,
    close_removes_ephemerals_and_ends_the_client,
    chroot_is_invisible_to_the_caller,
    pipelined_requests_are_answered_in_order,
);
use zkit::{
    Acl, AddWatchMode, CreateMode, CreateOptions, Error, EventType, Op, OpResult, Perms, ReadOp,
    ReadResult,
};

async fn create_in_every_mode(zk: &'static ZkServer) {
    let c = chrooted(zk, "create-modes").await;
    let (p, stat) = c.create("/p", b"d", CreateMode::Persistent).await.unwrap();
    assert_eq!(p, "/p");
    assert_eq!(
        (stat.ephemeral_owner, stat.data_length, stat.version),
        (0, 1, 0)
    );

    let (p, stat) = c.create("/e", b"", CreateMode::Ephemeral).await.unwrap();
    assert_eq!(p, "/e");
    assert_eq!(stat.ephemeral_owner, c.session_id());

    let (a, _) = c
        .create("/p/s-", b"", CreateMode::PersistentSequential)
        .await
        .unwrap();
    let (b, _) = c
        .create("/p/s-", b"", CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert_eq!(a, "/p/s-0000000000");
    assert_eq!(b, "/p/s-0000000001");

    // A container goes once its last child does.
    c.create("/box", b"", CreateMode::Container).await.unwrap();
    c.create("/box/item", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let (_, gone) = c.exists_watch("/box").await.unwrap();
    c.delete("/box/item", None).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(20), gone)
        .await
        .expect("container reaped");
    assert_eq!(event.event_type, EventType::NodeDeleted);

    // TTL nodes go once unmodified and childless past their TTL.
    let ttl = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_millis(200));
    c.create_with("/ttl", b"", &ttl).await.unwrap();
    let seq_ttl =
        CreateOptions::new(CreateMode::PersistentSequentialWithTtl).ttl(Duration::from_millis(200));
    let (s, _) = c.create_with("/ttl-", b"", &seq_ttl).await.unwrap();
    assert!(s.starts_with("/ttl-00000"), "{s}");
    let (stat, gone) = c.exists_watch("/ttl").await.unwrap();
    assert!(stat.is_some());
    let event = tokio::time::timeout(Duration::from_secs(20), gone)
        .await
        .expect("TTL node reaped");
    assert_eq!(event.event_type, EventType::NodeDeleted);

    // A TTL mode without a TTL, or a TTL on a plain mode, is refused before sending.
    assert!(matches!(
        c.create("/x", b"", CreateMode::PersistentWithTtl).await,
        Err(Error::InvalidArgument(_))
    ));
    let bad = CreateOptions::new(CreateMode::Persistent).ttl(Duration::from_secs(1));
    assert!(matches!(
        c.create_with("/x", b"", &bad).await,
        Err(Error::InvalidArgument(_))
    ));
}

async fn error_codes_name_the_path(zk: &'static ZkServer) {
    let c = chrooted(zk, "errors").await;
    c.create("/a", b"", CreateMode::Persistent).await.unwrap();
    assert_eq!(
        c.create("/a", b"", CreateMode::Persistent).await,
        Err(Error::NodeExists { path: "/a".into() })
    );
    assert_eq!(
        c.create("/missing/child", b"", CreateMode::Persistent)
            .await,
        Err(Error::NoNode {
            path: "/missing/child".into()
        })
    );
    assert_eq!(
        c.set_data("/a", b"x", Some(5)).await,
        Err(Error::BadVersion { path: "/a".into() })
    );
    assert_eq!(
        c.delete("/a", Some(3)).await,
        Err(Error::BadVersion { path: "/a".into() })
    );
    c.create("/a/b", b"", CreateMode::Persistent).await.unwrap();
    assert_eq!(
        c.delete("/a", None).await,
        Err(Error::NotEmpty { path: "/a".into() })
    );
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    assert_eq!(
        c.create("/eph/kid", b"", CreateMode::Persistent).await,
        Err(Error::NoChildrenForEphemerals {
            path: "/eph/kid".into()
        })
    );
    assert_eq!(
        c.get_data("/nope").await,
        Err(Error::NoNode {
            path: "/nope".into()
        })
    );
    assert_eq!(c.exists("/nope").await, Ok(None));
    // Invalid paths never reach the server.
    for bad in ["", "a", "/a/", "/a//b", "/a/./b", "/a\0"] {
        assert!(
            matches!(c.get_data(bad).await, Err(Error::InvalidPath(_))),
            "{bad:?}"
        );
    }
    let e = c.get_data("/a/").await.unwrap_err();
    assert!(e.to_string().contains("/a/"), "{e}");
}

async fn reads_writes_and_metadata(zk: &'static ZkServer) {
    let c = chrooted(zk, "rw").await;
    let (_, created) = c
        .create("/n", b"one", CreateMode::Persistent)
        .await
        .unwrap();
    let (data, stat) = c.get_data("/n").await.unwrap();
    assert_eq!((data.as_slice(), &stat), (&b"one"[..], &created));
    let set = c.set_data("/n", b"two!", Some(0)).await.unwrap();
    assert_eq!(
        (set.version, set.data_length, set.czxid),
        (1, 4, created.czxid)
    );
    assert!(set.mzxid > created.mzxid);
    assert_eq!(c.exists("/n").await.unwrap(), Some(set.clone()));

    for k in ["c", "a", "b"] {
        c.create(&format!("/n/{k}"), b"", CreateMode::Persistent)
            .await
            .unwrap();
    }
    c.create("/n/a/deep", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let mut kids = c.get_children("/n").await.unwrap();
    kids.sort();
    assert_eq!(kids, ["a", "b", "c"]);
    let (_, parent) = c.get_children_with_stat("/n").await.unwrap();
    assert_eq!((parent.num_children, parent.cversion), (3, 3));
    assert_eq!(c.count_descendants("/n").await.unwrap(), 4);
    assert_eq!(c.get_ephemerals("/").await.unwrap(), ["/n/a/deep"]);
    assert_eq!(
        c.get_ephemerals("/n/b").await.unwrap(),
        Vec::<String>::new()
    );

    c.sync("/n").await.unwrap();
    let (acl, _) = c.get_acl("/n").await.unwrap();
    assert_eq!(acl, Acl::open_unsafe());
    let st = c.set_acl("/n", Acl::read_unsafe(), Some(0)).await.unwrap();
    assert_eq!(st.aversion, 1);
    assert_eq!(
        c.set_data("/n", b"x", None).await,
        Err(Error::NoAuth { path: "/n".into() })
    );
    c.set_acl("/n", Acl::open_unsafe(), None).await.ok();

    let ids = c.who_am_i().await.unwrap();
    assert!(ids.iter().any(|i| i.auth_scheme == "ip"), "{ids:?}");
    let (config, _) = c.get_config().await.unwrap();
    let _ = String::from_utf8_lossy(&config);
    assert_eq!(c.four_letter("ruok").await.unwrap(), "imok");
    let version = c.server_version().await.unwrap();
    assert!(version.starts_with("3.8"), "{version}");
    assert!(matches!(
        c.four_letter("rm -rf").await,
        Err(Error::InvalidArgument(_))
    ));
}

async fn parents_and_recursive_delete(zk: &'static ZkServer) {
    let c = chrooted(zk, "tree").await;
    let opts = CreateOptions::new(CreateMode::Persistent).create_parents();
    let (p, _) = c.create_with("/x/y/z", b"leaf", &opts).await.unwrap();
    assert_eq!(p, "/x/y/z");
    c.ensure_path("/x/y").await.unwrap();
    c.ensure_path("/x/q/r").await.unwrap();
    assert_eq!(c.count_descendants("/x").await.unwrap(), 4);
    c.delete_recursive("/x").await.unwrap();
    assert_eq!(c.exists("/x").await.unwrap(), None);
    c.delete_recursive("/x").await.unwrap();
}

async fn multi_applies_all_or_nothing(zk: &'static ZkServer) {
    let c = chrooted(zk, "multi").await;
    let results = c
        .multi(&[
            Op::create("/m", b"1", CreateMode::Persistent),
            Op::create("/m/s-", b"", CreateMode::PersistentSequential),
            Op::set_data("/m", b"2", Some(0)),
            Op::check("/m", Some(1)),
        ])
        .await
        .unwrap();
    assert!(matches!(&results[0], OpResult::Create { path, .. } if path == "/m"));
    assert!(matches!(&results[1], OpResult::Create { path, .. } if path == "/m/s-0000000000"));
    assert!(matches!(&results[2], OpResult::SetData { stat } if stat.version == 1));
    assert_eq!(results[3], OpResult::Check);

    let err = c
        .multi(&[
            Op::create("/m/new", b"", CreateMode::Persistent),
            Op::delete("/m/missing", None),
            Op::set_data("/m", b"3", None),
        ])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::MultiFailed {
            index: 1,
            code: zkit::proto::ErrorCode::NoNode,
            path: "/m/missing".into()
        }
    );
    assert_eq!(c.exists("/m/new").await.unwrap(), None, "nothing applied");
    assert_eq!(c.get_data("/m").await.unwrap().0, b"2");

    let reads = c
        .multi_read(&[
            ReadOp::GetData("/m".into()),
            ReadOp::GetChildren("/nope".into()),
            ReadOp::GetChildren("/m".into()),
        ])
        .await
        .unwrap();
    assert!(matches!(&reads[0], ReadResult::Data(d, s) if d == b"2" && s.version == 1));
    assert_eq!(
        reads[1],
        ReadResult::Error(Error::NoNode {
            path: "/nope".into()
        })
    );
    assert_eq!(reads[2], ReadResult::Children(vec!["s-0000000000".into()]));
}

async fn one_shot_watches_fire_once_with_the_right_event(zk: &'static ZkServer) {
    let c = chrooted(zk, "watches").await;
    let other = chrooted_peer(zk, "watches").await;
    let (none, created) = c.exists_watch("/w").await.unwrap();
    assert_eq!(none, None);
    other
        .create("/w", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let e = created.await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeCreated, "/w")
    );

    let (_, _, changed) = c.get_data_watch("/w").await.unwrap();
    let (_, kids) = c.get_children_watch("/w").await.unwrap();
    other.set_data("/w", b"v", None).await.unwrap();
    assert_eq!(changed.await.event_type, EventType::NodeDataChanged);
    other
        .create("/w/k", b"", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(kids.await.event_type, EventType::NodeChildrenChanged);

    let (_, _, deleted) = c.get_data_watch("/w/k").await.unwrap();
    other.delete("/w/k", None).await.unwrap();
    assert_eq!(deleted.await.event_type, EventType::NodeDeleted);
}

async fn persistent_watches_stream_until_dropped(zk: &'static ZkServer) {
    let c = chrooted(zk, "persistent").await;
    let other = chrooted_peer(zk, "persistent").await;
    // One path, one mode: ZooKeeper 3.8 keeps a single watch mode per path and connection,
    // so the two kinds watch different nodes here.
    c.create("/p", b"", CreateMode::Persistent).await.unwrap();
    c.create("/r", b"", CreateMode::Persistent).await.unwrap();
    let mut node = c.add_watch("/p", AddWatchMode::Persistent).await.unwrap();
    let mut tree = c
        .add_watch("/r", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    for root in ["/p", "/r"] {
        other.set_data(root, b"1", None).await.unwrap();
        other
            .create(&format!("{root}/a"), b"", CreateMode::Persistent)
            .await
            .unwrap();
        other
            .create(&format!("{root}/a/b"), b"", CreateMode::Persistent)
            .await
            .unwrap();
        other.set_data(root, b"2", None).await.unwrap();
    }

    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = timeout(node.recv()).await.expect("event");
        seen.push((e.event_type, e.path));
    }
    assert_eq!(
        seen,
        [
            (EventType::NodeDataChanged, "/p".to_owned()),
            (EventType::NodeChildrenChanged, "/p".to_owned()),
            (EventType::NodeDataChanged, "/p".to_owned()),
        ]
    );
    let mut seen = Vec::new();
    for _ in 0..4 {
        let e = timeout(tree.recv()).await.expect("event");
        seen.push((e.event_type, e.path));
    }
    assert_eq!(
        seen,
        [
            (EventType::NodeDataChanged, "/r".to_owned()),
            (EventType::NodeCreated, "/r/a".to_owned()),
            (EventType::NodeCreated, "/r/a/b".to_owned()),
            (EventType::NodeDataChanged, "/r".to_owned()),
        ]
    );
    // Dropping both removes them from the server: `wchc` no longer lists the session.
    drop(node);
    drop(tree);
    c.sync("/").await.unwrap();
    c.sync("/").await.unwrap();
    let watches = c.four_letter("wchc").await.unwrap();
    assert!(!watches.contains("/persistent/p"), "{watches}");
    assert!(!watches.contains("/persistent/r"), "{watches}");
}

async fn digest_acl_needs_the_credential(zk: &'static ZkServer) {
    let hosts = zk.connect_string();
    let owner = zkit::Client::builder(hosts)
        .digest_auth("alice", "secret")
        .connect()
        .await
        .unwrap();
    owner.delete_recursive("/acl-test").await.ok();
    let opts = CreateOptions::new(CreateMode::Persistent).acl(Acl::creator_all());
    owner
        .create_with("/acl-test", b"private", &opts)
        .await
        .unwrap();
    let (acl, _) = owner.get_acl("/acl-test").await.unwrap();
    assert_eq!(acl[0].id.scheme, "digest");
    assert!(acl[0].id.id.starts_with("alice:"));
    assert_eq!(acl[0].perms, Perms::ALL);

    let stranger = connect(hosts).await;
    assert_eq!(
        stranger.get_data("/acl-test").await,
        Err(Error::NoAuth {
            path: "/acl-test".into()
        })
    );
    stranger.add_auth("digest", b"alice:wrong").await.unwrap();
    assert!(matches!(
        stranger.get_data("/acl-test").await,
        Err(Error::NoAuth { .. })
    ));
    stranger.add_auth("digest", b"alice:secret").await.unwrap();
    assert_eq!(stranger.get_data("/acl-test").await.unwrap().0, b"private");
    // An ACL no identity can match is refused.
    let bad =
        CreateOptions::new(CreateMode::Persistent).acl(vec![Acl::new(Perms::ALL, "nosuch", "x")]);
    assert!(matches!(
        owner.create_with("/acl-bad", b"", &bad).await,
        Err(Error::InvalidAcl { .. })
    ));
    owner.delete("/acl-test", None).await.unwrap();
}

async fn close_removes_ephemerals_and_ends_the_client(zk: &'static ZkServer) {
    let c = chrooted(zk, "close").await;
    let other = chrooted_peer(zk, "close").await;
    c.create("/mine", b"", CreateMode::Ephemeral).await.unwrap();
    let (_, gone) = other.exists_watch("/mine").await.unwrap();
    let mut states = c.state_changes();
    c.close().await;
    assert_eq!(gone.await.event_type, EventType::NodeDeleted);
    assert_eq!(states.recv().await.unwrap(), zkit::State::Closed);
    assert_eq!(c.get_data("/x").await, Err(Error::Closed));
}

async fn chroot_is_invisible_to_the_caller(zk: &'static ZkServer) {
    let c = chrooted(zk, "chroot").await;
    let (p, _) = c
        .create("/seq-", b"", CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(p, "/seq-0000000000");
    let root = connect(zk.connect_string()).await;
    assert!(root
        .exists("/chroot/seq-0000000000")
        .await
        .unwrap()
        .is_some());
    assert_eq!(c.get_children("/").await.unwrap(), ["seq-0000000000"]);
    let (_, _, w) = c.get_data_watch("/seq-0000000000").await.unwrap();
    root.set_data("/chroot/seq-0000000000", b"x", None)
        .await
        .unwrap();
    assert_eq!(w.await.path, "/seq-0000000000");
}

async fn pipelined_requests_are_answered_in_order(zk: &'static ZkServer) {
    let c = chrooted(zk, "pipeline").await;
    c.create("/q", b"", CreateMode::Persistent).await.unwrap();
    let mut calls = Vec::new();
    for _ in 0..2000 {
        let c = c.clone();
        calls.push(tokio::spawn(async move {
            c.create("/q/n-", b"", CreateMode::PersistentSequential)
                .await
        }));
    }
    let mut paths = Vec::new();
    for call in calls {
        paths.push(call.await.unwrap().unwrap().0);
    }
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 2000);
    assert_eq!(c.count_descendants("/q").await.unwrap(), 2000);
}

/// A second client on the same chroot.
async fn chrooted_peer(zk: &ZkServer, name: &str) -> zkit::Client {
    connect(&format!("{}/{name}", zk.connect_string())).await
}

/// Bounds a wait in a test so a missing event fails instead of hanging.
async fn timeout<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("event within 20 s")
}
