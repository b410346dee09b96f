//! The simulated server driven over real loopback TCP by a raw client built from
//! `zkit::proto`: handshake, every operation and its error codes, sessions, watches, ACLs,
//! hostile input and four-letter words.

mod common;

use std::time::Duration;

use common::Raw;
use rand::{RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zkit::proto::*;
use zkit_sim::server::acl::digest_id;
use zkit_sim::server::{Server, ServerConfig, ServerHandle};

type Client = Raw<TcpStream>;

async fn server() -> ServerHandle {
    server_with(ServerConfig::default()).await
}

async fn server_with(config: ServerConfig) -> ServerHandle {
    Server::bind("127.0.0.1:0", config).await.expect("bind")
}

async fn connect(h: &ServerHandle, timeout: i32) -> Client {
    resume(h, 0, vec![0; 16], timeout, 0)
        .await
        .expect("handshake answered")
}

async fn resume(
    h: &ServerHandle,
    id: i64,
    passwd: Vec<u8>,
    timeout: i32,
    zxid: i64,
) -> Option<Client> {
    let stream = TcpStream::connect(h.local_addr().expect("addr"))
        .await
        .expect("connect");
    Raw::handshake(stream, id, passwd, timeout, zxid)
        .await
        .expect("handshake")
}

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

#[tokio::test]
async fn handshake_negotiates_timeout_and_creates_session() {
    let h = server().await;
    let a = connect(&h, 1).await;
    assert_eq!(a.session.timeout, 4000, "clamped to 2 ticks");
    assert_ne!(a.session.session_id, 0);
    assert_eq!(a.session.passwd.len(), 16);
    assert!(!a.session.read_only);
    let b = connect(&h, 1_000_000).await;
    assert_eq!(b.session.timeout, 40_000, "clamped to 20 ticks");
    assert_ne!(a.session.session_id, b.session.session_id);
    let c = connect(&h, 10_000).await;
    assert_eq!(c.session.timeout, 10_000);
    assert_eq!(h.session_count(), 3);
    // Each createSession is a transaction.
    assert_eq!(h.last_zxid(), 3);
}

#[tokio::test]
async fn handshake_without_read_only_flag_is_accepted() {
    let h = server().await;
    let mut s = TcpStream::connect(h.local_addr().expect("addr"))
        .await
        .expect("connect");
    let req = ConnectRequest {
        timeout: 10_000,
        passwd: vec![0; 16],
        ..Default::default()
    };
    let mut body = req.to_bytes();
    body.pop();
    let mut out = Vec::new();
    encode_frame(&mut out, |b| b.extend_from_slice(&body));
    s.write_all(&out).await.expect("write");
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.expect("len");
    let mut reply = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut reply).await.expect("body");
    // An old client gets an old answer: no readOnly byte.
    let r = ConnectResponse::from_bytes(&reply);
    assert!(r.is_err());
    let r = ConnectResponse::from_frame(&reply).expect("decodes without the flag");
    assert_eq!(r.timeout, 10_000);
}

#[tokio::test]
async fn create_get_set_delete_and_their_errors() {
    let h = server().await;
    let mut c = connect(&h, 10_000).await;
    assert_eq!(
        c.create("/a", b"one", CreateMode::Persistent).await,
        Ok("/a".into())
    );
    let create_zxid = c.last_zxid;
    assert_eq!(
        c.create("/a", b"", CreateMode::Persistent).await,
        Err(ErrorCode::NodeExists)
    );
    assert_eq!(
        c.create("/x/y", b"", CreateMode::Persistent).await,
        Err(ErrorCode::NoNode)
    );
    assert_eq!(
        c.create("bad", b"", CreateMode::Persistent).await,
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        c.create("/a/", b"", CreateMode::Persistent).await,
        Err(ErrorCode::BadArguments)
    );
    // A failed write still takes a zxid, as in ZooKeeper.
    assert!(c.last_zxid > create_zxid);

    let (data, stat) = c.get("/a", false).await.expect("get");
    assert_eq!(data, b"one");
    assert_eq!(stat.czxid, create_zxid);
    assert_eq!(stat.mzxid, create_zxid);
    assert_eq!(stat.pzxid, create_zxid);
    assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
    assert_eq!(stat.data_length, 3);
    assert_eq!(stat.ephemeral_owner, 0);
    assert!(stat.ctime >= ServerConfig::default().epoch_ms && stat.ctime == stat.mtime);
    assert_eq!(c.get("/nope", false).await, Err(ErrorCode::NoNode));

    let s = c.set("/a", b"two", 0).await.expect("set");
    assert_eq!(s.version, 1);
    assert_eq!(s.mzxid, c.last_zxid);
    assert_eq!(s.czxid, create_zxid);
    assert_eq!(c.set("/a", b"three", 0).await, Err(ErrorCode::BadVersion));
    assert_eq!(c.set("/a", b"three", -1).await.map(|s| s.version), Ok(2));
    assert_eq!(c.set("/nope", b"", -1).await, Err(ErrorCode::NoNode));

    let st = c.exists("/a", false).await.expect("exists");
    assert_eq!(st.data_length, 5);
    assert_eq!(c.exists("/nope", false).await, Err(ErrorCode::NoNode));

    c.create("/a/b", b"", CreateMode::Persistent)
        .await
        .expect("child");
    let parent = c.exists("/a", false).await.expect("exists");
    assert_eq!(
        (parent.num_children, parent.cversion, parent.pzxid),
        (1, 1, c.last_zxid)
    );
    assert_eq!(c.delete("/a", -1).await, Err(ErrorCode::NotEmpty));
    assert_eq!(c.delete("/a/b", 5).await, Err(ErrorCode::BadVersion));
    assert_eq!(c.delete("/a/b", 0).await, Ok(()));
    assert_eq!(c.delete("/a/b", -1).await, Err(ErrorCode::NoNode));
    let parent = c.exists("/a", false).await.expect("exists");
    // Clients see cversion as creates plus deletes (`2 * creates - numChildren`).
    assert_eq!((parent.num_children, parent.cversion), (0, 2));
    assert_eq!(
        c.delete("/zookeeper", -1).await,
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(c.delete("/", -1).await, Err(ErrorCode::BadArguments));

    // create2 returns the Stat.
    match c
        .ask(Request::Create2(CreateRequest {
            path: "/c2".into(),
            data: b"abc".to_vec(),
            acl: open(),
            flags: CreateMode::Persistent,
        }))
        .await
    {
        Ok(Response::Create2(r)) => {
            assert_eq!(r.path, "/c2");
            assert_eq!(r.stat.data_length, 3);
            assert_eq!(r.stat.czxid, c.last_zxid);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn children_acl_sync_and_misc_reads() {
    let h = server().await;
    let mut c = connect(&h, 10_000).await;
    for p in ["/p", "/p/b", "/p/a", "/p/a/x"] {
        c.create(p, b"", CreateMode::Persistent)
            .await
            .expect("create");
    }
    // In the server's own (unsorted) order, as ZooKeeper's hash order.
    let mut kids = c.children("/p", false).await.expect("children");
    kids.sort();
    assert_eq!(kids, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(c.children("/nope", false).await, Err(ErrorCode::NoNode));
    match c
        .ask(Request::GetChildren2(WatchedRequest {
            path: "/p".into(),
            watch: false,
        }))
        .await
    {
        Ok(Response::GetChildren2(r)) => {
            assert_eq!(r.children.len(), 2);
            assert_eq!(r.stat.num_children, 2);
        }
        other => panic!("{other:?}"),
    }
    match c
        .ask(Request::GetAllChildrenNumber(PathRequest {
            path: "/p".into(),
        }))
        .await
    {
        Ok(Response::GetAllChildrenNumber(r)) => assert_eq!(r.total_number, 3),
        other => panic!("{other:?}"),
    }
    match c
        .ask(Request::GetAllChildrenNumber(PathRequest {
            path: "/".into(),
        }))
        .await
    {
        // /zookeeper, /zookeeper/quota, /zookeeper/config and the four above.
        Ok(Response::GetAllChildrenNumber(r)) => assert_eq!(r.total_number, 7),
        other => panic!("{other:?}"),
    }
    match c
        .ask(Request::Sync(PathRequest { path: "/p".into() }))
        .await
    {
        Ok(Response::Sync(r)) => assert_eq!(r.path, "/p"),
        other => panic!("{other:?}"),
    }
    // getConfig is a getData of /zookeeper/config (empty on a standalone server).
    let (data, _) = c.get("/zookeeper/config", false).await.expect("config");
    assert!(data.is_empty());
    match c
        .ask(Request::GetAcl(PathRequest { path: "/p".into() }))
        .await
    {
        Ok(Response::GetAcl(r)) => assert_eq!(r.acl, open()),
        other => panic!("{other:?}"),
    }
    match c
        .ask(Request::SetAcl(SetAclRequest {
            path: "/p".into(),
            acl: Acl::read_unsafe(),
            version: 0,
        }))
        .await
    {
        Ok(Response::Stat(s)) => assert_eq!(s.stat.aversion, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.ask(Request::SetAcl(SetAclRequest {
            path: "/p".into(),
            acl: open(),
            version: 0
        }))
        .await,
        Err(ErrorCode::NoAuth),
        "read-only ACL has no ADMIN"
    );
    assert_eq!(
        c.create("/p/c", b"", CreateMode::Persistent).await,
        Err(ErrorCode::NoAuth)
    );
    assert_eq!(c.set("/p", b"", -1).await, Err(ErrorCode::NoAuth));
    assert_eq!(
        c.ask(Request::SetAcl(SetAclRequest {
            path: "/p/a".into(),
            acl: vec![],
            version: -1
        }))
        .await,
        Err(ErrorCode::InvalidAcl)
    );
    match c.ask(Request::WhoAmI).await {
        Ok(Response::WhoAmI(r)) => {
            assert_eq!(r.client_info.len(), 1);
            assert_eq!(r.client_info[0].auth_scheme, "ip");
            assert_eq!(r.client_info[0].user, "127.0.0.1");
        }
        other => panic!("{other:?}"),
    }
    // check outside a multi.
    assert_eq!(
        c.ask(Request::Check(CheckVersionRequest {
            path: "/p/a".into(),
            version: 0
        }))
        .await,
        Ok(Response::Empty)
    );
    assert_eq!(
        c.ask(Request::Check(CheckVersionRequest {
            path: "/p/a".into(),
            version: 3
        }))
        .await,
        Err(ErrorCode::BadVersion)
    );
    assert_eq!(
        c.ask(Request::Reconfig(ReconfigRequest::default())).await,
        Err(ErrorCode::ReconfigDisabled)
    );
    // A create whose flags name no mode: ZooKeeper 3.8.0 refuses it with BADARGUMENTS (in an
    // error transaction, which takes a zxid) and the connection goes on.
    let before = c.call(&Request::Ping).await.0.zxid;
    let mut out = Vec::new();
    encode_frame(&mut out, |b| {
        Request::Create(CreateRequest {
            path: "/f".into(),
            data: vec![],
            acl: open(),
            flags: CreateMode::Persistent,
        })
        .encode(100, b);
        let n = b.len();
        b[n - 4..].copy_from_slice(&9i32.to_be_bytes());
    });
    c.send_raw(&out).await.expect("send");
    let frame = c.read_frame().await.expect("read").expect("frame");
    let hdr = ReplyHeader::from_bytes(&frame).expect("header only");
    assert_eq!((hdr.xid, hdr.err), (100, ErrorCode::BadArguments.code()));
    assert_eq!(hdr.zxid, before + 1, "the error transaction takes a zxid");
    assert_eq!(c.exists("/f", false).await, Err(ErrorCode::NoNode));
    c.ping().await;
    // An opcode ZooKeeper does not take (`Request.isValid`): UNIMPLEMENTED, with the
    // request's unset zxid, and the connection is closed.
    let mut out = Vec::new();
    encode_frame(&mut out, |b| RequestHeader { xid: 99, op: 77 }.encode(b));
    c.send_raw(&out).await.expect("send");
    let frame = c.read_frame().await.expect("read").expect("frame");
    let hdr = ReplyHeader::from_bytes(&frame).expect("header only");
    assert_eq!(
        (hdr.xid, hdr.zxid, hdr.err),
        (99, -1, ErrorCode::Unimplemented.code())
    );
    assert!(c.closed().await);
}

#[tokio::test]
async fn sequential_names_come_from_the_parent_cversion() {
    let h = server().await;
    let mut c = connect(&h, 10_000).await;
    c.create("/q", b"", CreateMode::Persistent)
        .await
        .expect("parent");
    assert_eq!(
        c.create("/q/n-", b"", CreateMode::PersistentSequential)
            .await,
        Ok("/q/n-0000000000".into())
    );
    assert_eq!(
        c.create("/q/n-", b"", CreateMode::EphemeralSequential)
            .await,
        Ok("/q/n-0000000001".into())
    );
    c.create("/q/plain", b"", CreateMode::Persistent)
        .await
        .expect("plain");
    c.delete("/q/n-0000000000", -1).await.expect("delete");
    assert_eq!(
        c.create("/q/n-", b"", CreateMode::PersistentSequential)
            .await,
        Ok("/q/n-0000000003".into())
    );
    assert_eq!(
        c.create("/q/", b"", CreateMode::PersistentSequential).await,
        Ok("/q/0000000004".into())
    );
}

#[tokio::test]
async fn containers_ttl_and_ephemeral_rules() {
    let h = server().await;
    let mut c = connect(&h, 10_000).await;
    match c
        .ask(Request::CreateContainer(CreateRequest {
            path: "/box".into(),
            data: vec![],
            acl: open(),
            flags: CreateMode::Container,
        }))
        .await
    {
        // Clients see 0; the tree keeps the container marker.
        Ok(Response::Create2(r)) => assert_eq!(r.stat.ephemeral_owner, 0),
        other => panic!("{other:?}"),
    }
    let ttl = |ttl: i64, flags: CreateMode| {
        Request::CreateTtl(CreateTtlRequest {
            path: "/ttl".into(),
            data: vec![],
            acl: open(),
            flags,
            ttl,
        })
    };
    assert_eq!(
        c.ask(ttl(0, CreateMode::PersistentWithTtl)).await,
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        c.ask(ttl(-5, CreateMode::PersistentWithTtl)).await,
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        c.ask(ttl(1 << 40, CreateMode::PersistentWithTtl)).await,
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        c.ask(ttl(100, CreateMode::Persistent)).await,
        Err(ErrorCode::BadArguments)
    );
    match c.ask(ttl(100, CreateMode::PersistentWithTtl)).await {
        Ok(Response::Create2(r)) => assert_eq!(r.stat.ephemeral_owner, 0),
        other => panic!("{other:?}"),
    }
    let tree = h.tree();
    let owner = |p: &str| tree.node(p).map(|n| n.stat.ephemeral_owner as u64);
    assert_eq!(owner("/box"), Some(0x8000_0000_0000_0000));
    assert_eq!(owner("/ttl"), Some(0xff00_0000_0000_0064));
    let e = c
        .create("/eph", b"", CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    assert_eq!(
        c.exists(&e, false).await.map(|s| s.ephemeral_owner),
        Ok(c.session.session_id)
    );
    assert_eq!(
        c.create("/eph/child", b"", CreateMode::Persistent).await,
        Err(ErrorCode::NoChildrenForEphemerals)
    );
    // Containers and TTL nodes may have children.
    c.create("/box/x", b"", CreateMode::Persistent)
        .await
        .expect("child of container");
    match c
        .ask(Request::GetEphemerals(PathRequest { path: "/".into() }))
        .await
    {
        Ok(Response::GetEphemerals(r)) => assert_eq!(r.ephemerals, vec!["/eph".to_owned()]),
        other => panic!("{other:?}"),
    }
    match c
        .ask(Request::GetEphemerals(PathRequest {
            path: "/box".into(),
        }))
        .await
    {
        Ok(Response::GetEphemerals(r)) => assert!(r.ephemerals.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ttl_nodes_off_when_extended_types_disabled() {
    let h = server_with(ServerConfig {
        extended_types: false,
        ..Default::default()
    })
    .await;
    let mut c = connect(&h, 10_000).await;
    let r = c
        .ask(Request::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: vec![],
            acl: open(),
            flags: CreateMode::PersistentWithTtl,
            ttl: 10,
        }))
        .await;
    assert_eq!(r, Err(ErrorCode::Unimplemented));
}

#[tokio::test(start_paused = true)]
async fn reaper_deletes_empty_containers_and_expired_ttl_nodes() {
    let h = server_with(ServerConfig {
        reaper_interval: Duration::from_secs(5),
        ..Default::default()
    })
    .await;
    let mut c = connect(&h, 40_000).await;
    c.ask(Request::CreateContainer(CreateRequest {
        path: "/box".into(),
        data: vec![],
        acl: open(),
        flags: CreateMode::Container,
    }))
    .await
    .expect("container");
    c.create("/box/x", b"", CreateMode::Persistent)
        .await
        .expect("child");
    c.ask(Request::CreateTtl(CreateTtlRequest {
        path: "/t".into(),
        data: vec![],
        acl: open(),
        flags: CreateMode::PersistentWithTtl,
        ttl: 1,
    }))
    .await
    .expect("ttl");
    c.exists("/box", true).await.expect("watch box");
    c.exists("/t", true).await.expect("watch ttl");
    c.delete("/box/x", -1).await.expect("empty the box");
    // The next reaper pass deletes both; the watches tell us (time auto-advances).
    let mut deleted = [c.next_event().await, c.next_event().await];
    deleted.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(
        deleted
            .iter()
            .map(|e| (e.event_type, e.path.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (EventType::NodeDeleted, "/box"),
            (EventType::NodeDeleted, "/t"),
        ]
    );
}

#[tokio::test]
async fn close_session_deletes_ephemerals_and_fires_watches() {
    let h = server().await;
    let mut owner = connect(&h, 10_000).await;
    let mut observer = connect(&h, 10_000).await;
    owner
        .create("/lock", b"", CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    observer.exists("/lock", true).await.expect("watch");
    let (hdr, r) = owner.call(&Request::CloseSession).await;
    assert_eq!(r, Ok(Response::Empty));
    assert!(owner.closed().await, "server closes after closeSession");
    let ev = observer.next_event().await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDeleted, "/lock")
    );
    assert_eq!(ev.state, KeeperState::SyncConnected);
    assert_eq!(
        observer.exists("/lock", false).await,
        Err(ErrorCode::NoNode)
    );
    assert!(observer.last_zxid >= hdr.zxid);
    // The closed session cannot be resumed.
    let again = resume(
        &h,
        owner.session.session_id,
        owner.session.passwd.clone(),
        10_000,
        0,
    )
    .await
    .expect("answered");
    assert_eq!((again.session.timeout, again.session.session_id), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn expiry_deletes_ephemerals_before_the_client_learns_it() {
    let h = server().await;
    let mut owner = connect(&h, 4000).await;
    let mut observer = connect(&h, 40_000).await;
    owner
        .create("/leader", b"me", CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    observer.get("/leader", true).await.expect("watch");
    let id = owner.session.session_id;
    let passwd = owner.session.passwd.clone();
    // The owner goes silent (no pings) but keeps its connection open.
    let start = tokio::time::Instant::now();
    let ev = observer.next_event().await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDeleted, "/leader")
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(4000) && waited <= Duration::from_millis(8000),
        "{waited:?}"
    );
    // Its connection was closed by the server.
    assert!(owner.closed().await);
    // Reconnecting tells it the session is gone: timeout 0, session id 0.
    let late = resume(&h, id, passwd, 4000, 0).await.expect("answered");
    assert_eq!((late.session.timeout, late.session.session_id), (0, 0));
    assert_eq!(late.session.passwd, vec![0; 16]);
    assert_eq!(h.session_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn pings_keep_a_session_alive() {
    let h = server().await;
    let mut c = connect(&h, 4000).await;
    c.create("/e", b"", CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        c.ping().await;
    }
    assert!(c.exists("/e", false).await.is_ok());
}

#[tokio::test]
async fn resume_with_password_and_wrong_password() {
    let h = server().await;
    let mut c = connect(&h, 10_000).await;
    c.create("/e", b"", CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    let id = c.session.session_id;
    let pw = c.session.passwd.clone();
    let zxid = c.last_zxid;
    drop(c);
    let mut back = resume(&h, id, pw.clone(), 12_000, zxid)
        .await
        .expect("answered");
    assert_eq!(
        (back.session.session_id, back.session.timeout),
        (id, 12_000)
    );
    assert_eq!(back.session.passwd, pw);
    assert!(
        back.exists("/e", false).await.is_ok(),
        "ephemeral survived the reconnect"
    );
    // A client that has seen a zxid from the future is refused without an answer.
    assert!(resume(&h, id, pw.clone(), 12_000, zxid + 1000)
        .await
        .is_none());
    let mut wrong = pw.clone();
    wrong[0] ^= 1;
    let mut bad = resume(&h, id, wrong, 12_000, 0).await.expect("answered");
    assert_eq!((bad.session.session_id, bad.session.timeout), (0, 0));
    assert!(bad.closed().await);
    // As in ZooKeeper, the attempt already closed the session's previous connection.
    assert!(back.closed().await);
}

#[tokio::test]
async fn one_shot_watches_fire_once_and_before_the_reply() {
    let h = server().await;
    let mut c = connect(&h, 10_000).await;
    let mut w = connect(&h, 10_000).await;
    // exists watch on a missing node -> NodeCreated.
    assert_eq!(w.exists("/n", true).await, Err(ErrorCode::NoNode));
    w.children("/", true).await.expect("child watch on root");
    c.create("/n", b"", CreateMode::Persistent)
        .await
        .expect("create");
    let zxid = c.last_zxid;
    let e1 = w.next_event().await;
    let e2 = w.next_event().await;
    assert_eq!(
        (e1.event_type, e1.path.as_str()),
        (EventType::NodeCreated, "/n")
    );
    assert_eq!(
        (e2.event_type, e2.path.as_str()),
        (EventType::NodeChildrenChanged, "/")
    );
    // data watch -> NodeDataChanged, once.
    w.get("/n", true).await.expect("get");
    c.set("/n", b"1", -1).await.expect("set");
    c.set("/n", b"2", -1).await.expect("set");
    let e = w.next_event().await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDataChanged, "/n")
    );
    w.ping().await;
    assert!(w.events.is_empty(), "a one-shot watch fires once");
    // Own change: the notification is queued before the reply.
    w.get("/n", true).await.expect("get");
    w.set("/n", b"3", -1).await.expect("own set");
    let (ev_zxid, ev) = w.events.pop_front().expect("event before reply");
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
    assert_eq!(
        ev_zxid, -1,
        "ZooKeeper 3.8 sends -1 as a notification's zxid"
    );
    assert!(w.last_zxid > zxid);
    // child + data watch on a deleted node -> one NodeDeleted; parent's child watch fires.
    w.get("/n", true).await.expect("get");
    w.children("/n", true).await.expect("children");
    w.children("/", true).await.expect("children of root");
    c.delete("/n", -1).await.expect("delete");
    let a = w.next_event().await;
    let b = w.next_event().await;
    assert_eq!(
        (a.event_type, a.path.as_str()),
        (EventType::NodeDeleted, "/n")
    );
    assert_eq!(
        (b.event_type, b.path.as_str()),
        (EventType::NodeChildrenChanged, "/")
    );
    w.ping().await;
    assert!(w.events.is_empty());
}

#[tokio::test]
async fn persistent_and_recursive_watches_and_their_removal() {
    let h = server().await;
    let mut c = connect(&h, 10_000).await;
    let mut w = connect(&h, 10_000).await;
    c.create("/r", b"", CreateMode::Persistent)
        .await
        .expect("create");
    let add = |path: &str, mode| {
        Request::AddWatch(AddWatchRequest {
            path: path.into(),
            mode,
        })
    };
    assert_eq!(
        w.ask(add("/r", AddWatchMode::Persistent)).await,
        Ok(Response::AddWatch(ErrorResponse { err: 0 }))
    );
    assert_eq!(
        w.ask(add("/", AddWatchMode::PersistentRecursive)).await,
        Ok(Response::AddWatch(ErrorResponse { err: 0 }))
    );
    c.set("/r", b"1", -1).await.expect("set");
    c.set("/r", b"2", -1).await.expect("set");
    c.create("/r/k", b"", CreateMode::Persistent)
        .await
        .expect("child");
    c.set("/r/k", b"x", -1).await.expect("set child");
    w.ping().await;
    let got: Vec<(EventType, String)> = w
        .events
        .drain(..)
        .map(|(_, e)| (e.event_type, e.path))
        .collect();
    // One connection holds both watches: an event reaches it once per change.
    assert_eq!(
        got,
        vec![
            (EventType::NodeDataChanged, "/r".into()),
            (EventType::NodeDataChanged, "/r".into()),
            (EventType::NodeCreated, "/r/k".into()),
            (EventType::NodeChildrenChanged, "/r".into()),
            (EventType::NodeDataChanged, "/r/k".into()),
        ]
    );
    let check = |path: &str, t| {
        Request::CheckWatches(RemoveWatchesRequest {
            path: path.into(),
            watcher_type: t,
        })
    };
    let remove = |path: &str, t| {
        Request::RemoveWatches(RemoveWatchesRequest {
            path: path.into(),
            watcher_type: t,
        })
    };
    assert_eq!(
        w.ask(check("/r", WatcherType::Any)).await,
        Ok(Response::Empty)
    );
    assert_eq!(
        w.ask(check("/r/k", WatcherType::Any)).await,
        Err(ErrorCode::NoWatcher)
    );
    // ZooKeeper 3.8 cannot read these two watcher types: MARSHALLINGERROR.
    assert_eq!(
        w.ask(check("/", WatcherType::PersistentRecursive)).await,
        Err(ErrorCode::MarshallingError)
    );
    assert_eq!(
        w.ask(remove("/", WatcherType::Persistent)).await,
        Err(ErrorCode::MarshallingError)
    );
    assert_eq!(
        w.ask(remove("/", WatcherType::Any)).await,
        Ok(Response::Empty)
    );
    assert_eq!(
        w.ask(remove("/", WatcherType::Any)).await,
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(
        w.ask(remove("/r", WatcherType::Any)).await,
        Ok(Response::Empty)
    );
    assert_eq!(
        w.ask(check("/r", WatcherType::Any)).await,
        Err(ErrorCode::NoWatcher)
    );
    c.set("/r", b"3", -1).await.expect("set");
    w.ping().await;
    assert!(w.events.is_empty(), "removed watches are silent");
    // A removed one-shot data watch.
    w.get("/r", true).await.expect("get");
    assert_eq!(
        w.ask(check("/r", WatcherType::Data)).await,
        Ok(Response::Empty)
    );
    assert_eq!(
        w.ask(remove("/r", WatcherType::Children)).await,
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(
        w.ask(remove("/r", WatcherType::Data)).await,
        Ok(Response::Empty)
    );
}

#[tokio::test]
async fn set_watches_on_reconnect_fire_what_changed() {
    let h = server().await;
    let mut c = connect(&h, 10_000).await;
    for p in ["/d1", "/d2", "/d3", "/c1", "/c2", "/c3"] {
        c.create(p, b"", CreateMode::Persistent)
            .await
            .expect("create");
    }
    let mut w = connect(&h, 10_000).await;
    w.ping().await;
    let seen = w.last_zxid;
    let (id, pw) = (w.session.session_id, w.session.passwd.clone());
    drop(w);
    // While the watcher is away:
    c.set("/d1", b"changed", -1).await.expect("set");
    c.delete("/d2", -1).await.expect("delete");
    c.create("/e1", b"", CreateMode::Persistent)
        .await
        .expect("create");
    c.create("/c1/kid", b"", CreateMode::Persistent)
        .await
        .expect("child");
    c.delete("/c2", -1).await.expect("delete");
    let mut w = resume(&h, id, pw, 10_000, seen).await.expect("answered");
    assert_eq!(w.session.session_id, id);
    let (hdr, r) = w
        .call(&Request::SetWatches(SetWatches {
            relative_zxid: seen,
            data_watches: vec!["/d1".into(), "/d2".into(), "/d3".into()],
            exist_watches: vec!["/e1".into(), "/e2".into()],
            child_watches: vec!["/c1".into(), "/c2".into(), "/c3".into()],
        }))
        .await;
    assert_eq!(hdr.xid, SET_WATCHES_XID);
    assert_eq!(r, Ok(Response::Empty));
    let fired: Vec<(i64, EventType, String)> = w
        .events
        .drain(..)
        .map(|(z, e)| (z, e.event_type, e.path))
        .collect();
    assert_eq!(
        fired,
        vec![
            (-1, EventType::NodeDataChanged, "/d1".into()),
            (-1, EventType::NodeDeleted, "/d2".into()),
            (-1, EventType::NodeCreated, "/e1".into()),
            (-1, EventType::NodeChildrenChanged, "/c1".into()),
            (-1, EventType::NodeDeleted, "/c2".into()),
        ]
    );
    // The unchanged ones were set and fire later.
    c.set("/d3", b"", -1).await.expect("set");
    c.create("/e2", b"", CreateMode::Persistent)
        .await
        .expect("create");
    c.create("/c3/kid", b"", CreateMode::Persistent)
        .await
        .expect("create");
    let got = [
        w.next_event().await,
        w.next_event().await,
        w.next_event().await,
    ];
    assert_eq!(
        got.iter()
            .map(|e| (e.event_type, e.path.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (EventType::NodeDataChanged, "/d3"),
            (EventType::NodeCreated, "/e2"),
            (EventType::NodeChildrenChanged, "/c3"),
        ]
    );
    // SetWatches2 restores persistent watches too.
    let (_, r) = w
        .call(&Request::SetWatches2(SetWatches2 {
            relative_zxid: w.last_zxid,
            persistent_recursive_watches: vec!["/c3".into()],
            ..Default::default()
        }))
        .await;
    assert_eq!(r, Ok(Response::Empty));
    c.set("/c3/kid", b"x", -1).await.expect("set");
    let e = w.next_event().await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDataChanged, "/c3/kid")
    );
}

#[tokio::test]
async fn multi_success_and_failure_layout() {
    let h = server().await;
    let mut c = connect(&h, 10_000).await;
    let create = |p: &str| {
        MultiOp::Create(CreateRequest {
            path: p.into(),
            data: vec![],
            acl: open(),
            flags: CreateMode::Persistent,
        })
    };
    let ok = c
        .ask(Request::Multi(MultiRequest {
            ops: vec![
                create("/m"),
                MultiOp::Create2(CreateRequest {
                    path: "/m/s-".into(),
                    data: vec![1],
                    acl: open(),
                    flags: CreateMode::PersistentSequential,
                }),
                MultiOp::SetData(SetDataRequest {
                    path: "/m".into(),
                    data: b"d".to_vec(),
                    version: 0,
                }),
                MultiOp::Check(CheckVersionRequest {
                    path: "/m".into(),
                    version: 1,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/m/s-0000000000".into(),
                    version: 0,
                }),
            ],
        }))
        .await;
    let zxid = c.last_zxid;
    match ok {
        Ok(Response::Multi(r)) => {
            assert_eq!(r.results.len(), 5);
            assert_eq!(
                r.results[0],
                MultiResult::Create(CreateResponse { path: "/m".into() })
            );
            // ZooKeeper 3.8 answers a create2 inside a multi with a plain create result
            // (ZOOKEEPER-4026; 3.9 adds the Stat).
            assert_eq!(
                r.results[1],
                MultiResult::Create(CreateResponse {
                    path: "/m/s-0000000000".into()
                })
            );
            match &r.results[2] {
                MultiResult::SetData(s) => {
                    assert_eq!(s.stat.version, 1);
                    assert_eq!(s.stat.mzxid, zxid, "every op of a multi shares its zxid");
                    assert_eq!(s.stat.czxid, zxid, "created in the same multi");
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(r.results[3], MultiResult::Check);
            assert_eq!(r.results[4], MultiResult::Delete);
        }
        other => panic!("{other:?}"),
    }
    let before = h.tree();
    let (hdr, failed) = c
        .call(&Request::Multi(MultiRequest {
            ops: vec![
                create("/n1"),
                MultiOp::Delete(DeleteRequest {
                    path: "/missing".into(),
                    version: -1,
                }),
                create("/n2"),
                MultiOp::Check(CheckVersionRequest {
                    path: "/m".into(),
                    version: 1,
                }),
            ],
        }))
        .await;
    assert_eq!(
        hdr.err, 0,
        "a failed multi is answered with err 0 in the header"
    );
    assert_eq!(
        failed,
        Ok(Response::Multi(MultiResponse {
            results: vec![
                MultiResult::Error(ErrorCode::Ok),
                MultiResult::Error(ErrorCode::NoNode),
                MultiResult::Error(ErrorCode::RuntimeInconsistency),
                MultiResult::Error(ErrorCode::RuntimeInconsistency),
            ]
        }))
    );
    assert_eq!(
        c.exists("/n1", false).await,
        Err(ErrorCode::NoNode),
        "nothing applied"
    );
    assert_eq!(h.tree().nodes(), before.nodes());
    // A check failing in a multi.
    let r = c
        .ask(Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Check(CheckVersionRequest {
                    path: "/m".into(),
                    version: 7,
                }),
                create("/n3"),
            ],
        }))
        .await;
    assert_eq!(
        r,
        Ok(Response::Multi(MultiResponse {
            results: vec![
                MultiResult::Error(ErrorCode::BadVersion),
                MultiResult::Error(ErrorCode::RuntimeInconsistency)
            ]
        }))
    );
    // multiRead: per-op results, errors inline, no atomicity.
    let r = c
        .ask(Request::MultiRead(MultiRequest {
            ops: vec![
                MultiOp::GetData(WatchedRequest {
                    path: "/m".into(),
                    watch: false,
                }),
                MultiOp::GetChildren(WatchedRequest {
                    path: "/missing".into(),
                    watch: false,
                }),
                MultiOp::GetChildren(WatchedRequest {
                    path: "/".into(),
                    watch: false,
                }),
            ],
        }))
        .await;
    match r {
        Ok(Response::Multi(r)) => {
            assert!(matches!(&r.results[0], MultiResult::GetData(d) if d.data == b"d"));
            assert_eq!(r.results[1], MultiResult::Error(ErrorCode::NoNode));
            assert!(
                matches!(&r.results[2], MultiResult::GetChildren(c) if c.children.contains(&"m".to_owned()))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn digest_acl_needs_auth() {
    let h = server().await;
    let mut alice = connect(&h, 10_000).await;
    // No identity yet: "auth" ACLs have nothing to expand to.
    assert_eq!(
        alice
            .create_acl("/secret", b"s", CreateMode::Persistent, Acl::creator_all())
            .await,
        Err(ErrorCode::InvalidAcl)
    );
    alice.add_auth("digest", b"alice:pw").await.expect("auth");
    alice
        .create_acl("/secret", b"s", CreateMode::Persistent, Acl::creator_all())
        .await
        .expect("create");
    let mut bob = connect(&h, 10_000).await;
    assert_eq!(bob.get("/secret", false).await, Err(ErrorCode::NoAuth));
    assert_eq!(bob.set("/secret", b"x", -1).await, Err(ErrorCode::NoAuth));
    assert_eq!(
        bob.exists("/secret", false).await.map(|s| s.data_length),
        Ok(1),
        "exists needs no permission"
    );
    assert_eq!(
        bob.ask(Request::GetAcl(PathRequest {
            path: "/secret".into()
        }))
        .await,
        Err(ErrorCode::NoAuth)
    );
    bob.add_auth("digest", b"alice:wrong")
        .await
        .expect("any digest is accepted");
    assert_eq!(bob.get("/secret", false).await, Err(ErrorCode::NoAuth));
    bob.add_auth("digest", b"alice:pw").await.expect("auth");
    assert_eq!(
        bob.get("/secret", false).await.map(|d| d.0),
        Ok(b"s".to_vec())
    );
    match bob
        .ask(Request::GetAcl(PathRequest {
            path: "/secret".into(),
        }))
        .await
    {
        Ok(Response::GetAcl(r)) => assert_eq!(
            r.acl,
            vec![Acl::new(Perms::ALL, "digest", &digest_id("alice:pw"))]
        ),
        other => panic!("{other:?}"),
    }
    match bob.ask(Request::WhoAmI).await {
        Ok(Response::WhoAmI(r)) => {
            let users: Vec<(String, String)> = r
                .client_info
                .into_iter()
                .map(|c| (c.auth_scheme, c.user))
                .collect();
            assert_eq!(
                users,
                vec![
                    ("ip".into(), "127.0.0.1".into()),
                    ("digest".into(), "alice".into()),
                    ("digest".into(), "alice".into()),
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    // Read-only for the world, digest for writes: getACL without ADMIN hides the hash.
    alice
        .create_acl(
            "/mixed",
            b"",
            CreateMode::Persistent,
            vec![
                Acl::new(Perms::READ, "world", "anyone"),
                Acl::new(Perms::ALL, "digest", &digest_id("alice:pw")),
            ],
        )
        .await
        .expect("create");
    let mut carol = connect(&h, 10_000).await;
    match carol
        .ask(Request::GetAcl(PathRequest {
            path: "/mixed".into(),
        }))
        .await
    {
        Ok(Response::GetAcl(r)) => assert_eq!(r.acl[1].id.id, "alice:x"),
        other => panic!("{other:?}"),
    }
    // A scheme the server does not know: AUTHFAILED, then the connection closes.
    let (hdr, r) = carol
        .call(&Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "kerberos".into(),
            auth: b"x".to_vec(),
        }))
        .await;
    assert_eq!((hdr.xid, r), (AUTH_XID, Err(ErrorCode::AuthFailed)));
    assert!(carol.closed().await);
}

#[tokio::test]
async fn watch_events_are_filtered_by_read_acl() {
    let h = server().await;
    let mut owner = connect(&h, 10_000).await;
    owner.add_auth("digest", b"o:pw").await.expect("auth");
    let mut w = connect(&h, 10_000).await;
    w.exists("/hidden", true).await.expect_err("missing");
    w.exists("/visible", true).await.expect_err("missing");
    owner
        .create_acl("/hidden", b"", CreateMode::Persistent, Acl::creator_all())
        .await
        .expect("create");
    owner
        .create("/visible", b"", CreateMode::Persistent)
        .await
        .expect("create");
    let e = w.next_event().await;
    assert_eq!(
        e.path, "/visible",
        "no READ on /hidden: its event is not delivered"
    );
}

#[tokio::test]
async fn hostile_input_closes_only_that_connection() {
    let h = server().await;
    let mut good = connect(&h, 10_000).await;
    good.create("/alive", b"", CreateMode::Persistent)
        .await
        .expect("create");
    let addr = h.local_addr().expect("addr");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    for round in 0..40 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut junk = vec![0u8; (rng.next_u32() % 64) as usize + 1];
        rng.fill_bytes(&mut junk);
        if round % 3 == 0 {
            // A plausible length announcing more than is sent, then EOF.
            let n = junk.len().min(4);
            junk[..n].copy_from_slice(&[0, 0, 0, 40][..n]);
        }
        let _ = s.write_all(&junk).await;
        let _ = s.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink))
            .await
            .expect("server closes");
    }
    // Negative and oversized lengths.
    for prefix in [[0xff, 0xff, 0xff, 0xf0], [0x7f, 0, 0, 0]] {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(&prefix).await.expect("write");
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink))
            .await
            .expect("server closes");
    }
    // After a good handshake: a truncated request body, a bad opcode body, trailing bytes.
    let mut garbage: Vec<Vec<u8>> = Vec::new();
    let mut f = Vec::new();
    encode_frame(&mut f, |b| {
        b.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 4, 0, 0])
    });
    garbage.push(f);
    let mut f = Vec::new();
    encode_frame(&mut f, |b| {
        Request::Delete(DeleteRequest {
            path: "/alive".into(),
            version: -1,
        })
        .encode(3, b);
        b.push(7);
    });
    garbage.push(f);
    let mut f = Vec::new();
    encode_frame(&mut f, |b| {
        RequestHeader {
            xid: 4,
            op: OpCode::Create.code(),
        }
        .encode(b);
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xf0]);
    });
    garbage.push(f);
    for g in garbage {
        let mut bad = connect(&h, 10_000).await;
        bad.send_raw(&g).await.expect("send");
        assert!(bad.closed().await, "malformed request drops the connection");
    }
    good.ping().await;
    assert!(
        good.exists("/alive", false).await.is_ok(),
        "the malformed delete was not applied"
    );
    good.create("/still", b"", CreateMode::Persistent)
        .await
        .expect("other sessions go on");
}

#[tokio::test]
async fn four_letter_words() {
    let h = server().await;
    let mut c = connect(&h, 10_000).await;
    c.create("/x", b"", CreateMode::Ephemeral)
        .await
        .expect("create");
    let ask = |cmd: &'static str| {
        let addr = h.local_addr().expect("addr");
        async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(cmd.as_bytes()).await.expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).await.expect("read");
            out
        }
    };
    assert_eq!(ask("ruok").await, "imok");
    let srvr = ask("srvr").await;
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    assert!(srvr.starts_with("Zookeeper version: "), "{srvr}");
    let mntr = ask("mntr").await;
    assert!(mntr.contains("zk_server_state\tstandalone"), "{mntr}");
    assert!(mntr.contains("zk_ephemerals_count\t1"), "{mntr}");
    assert!(ask("dump").await.contains("\t/x"));
    assert!(ask("conf").await.contains("tickTime=2000"));
    assert!(ask("envi").await.starts_with("Environment:"));
    assert!(ask("stat").await.contains("Clients:"));
    assert!(ask("cons").await.contains("sid=0x"));
    assert_eq!(ask("isro").await, "rw");
    // The connection that asked is not a client connection; the session is untouched.
    c.ping().await;
}

#[tokio::test]
async fn a_one_shot_watch_replaces_a_persistent_one_on_the_same_path() {
    // ZooKeeper 3.8 keeps one mode per watcher and path: the last watch set wins.
    let h = server().await;
    let mut c = connect(&h, 10_000).await;
    let mut w = connect(&h, 10_000).await;
    c.create("/p", b"", CreateMode::Persistent)
        .await
        .expect("create");
    let add = Request::AddWatch(AddWatchRequest {
        path: "/p".into(),
        mode: AddWatchMode::Persistent,
    });
    w.ask(add).await.expect("addWatch");
    w.get("/p", true).await.expect("one-shot");
    c.set("/p", b"1", -1).await.expect("set");
    c.set("/p", b"2", -1).await.expect("set");
    c.create("/p/kid", b"", CreateMode::Persistent)
        .await
        .expect("child");
    w.ping().await;
    let got: Vec<(EventType, String)> = w
        .events
        .drain(..)
        .map(|(_, e)| (e.event_type, e.path))
        .collect();
    assert_eq!(
        got,
        vec![
            (EventType::NodeDataChanged, "/p".into()),
            // The child table still holds the persistent watch.
            (EventType::NodeChildrenChanged, "/p".into()),
        ]
    );
}

#[tokio::test]
async fn notifications_carry_the_zxid_when_configured_like_3_9() {
    let h = server_with(ServerConfig {
        notification_zxid: true,
        ..Default::default()
    })
    .await;
    let mut c = connect(&h, 10_000).await;
    assert_eq!(c.exists("/z", true).await, Err(ErrorCode::NoNode));
    c.create("/z", b"", CreateMode::Persistent)
        .await
        .expect("create");
    let (zxid, ev) = c.events.pop_front().expect("event before reply");
    assert_eq!(ev.event_type, EventType::NodeCreated);
    assert_eq!(zxid, c.last_zxid);
}

/// ZooKeeper's NIO connection factory closes a connection with no traffic for its timeout
/// (10 s before the handshake), in buckets rounded up to the next multiple of 10 s: a
/// connection that never says anything is closed 10 to 20 s after it was accepted, and no
/// earlier. After the handshake the negotiated session timeout counts instead, and traffic
/// (a ping) keeps the connection open.
#[tokio::test(start_paused = true)]
async fn idle_connections_are_closed_as_zookeepers_nio_factory_closes_them() {
    let h = server().await;
    let start = tokio::time::Instant::now();
    let mut silent = TcpStream::connect(h.local_addr().expect("addr"))
        .await
        .expect("connect");
    let mut byte = [0u8; 1];
    let n = silent.read(&mut byte).await.expect("a clean close");
    assert_eq!(n, 0, "nothing is ever sent to a silent connection");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited <= Duration::from_secs(20),
        "closed after {waited:?}"
    );

    // A session's connection lives as long as pings keep coming, well past 20 s.
    let mut c = connect(&h, 4000).await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        c.ping().await;
    }
    assert!(c.exists("/", false).await.is_ok());
}
