//! Golden frames captured from real traffic between Apache ZooKeeper 3.8 and Kazoo
//! (`tests/fixtures/golden`, see its README for how): our decoder reads them, and our encoder
//! writes the very same bytes back.

use zkit::proto::*;

fn frame(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/golden/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let len = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    assert_eq!(len as usize, bytes.len() - 4, "{name}: length prefix");
    bytes
}

/// The body of a golden frame, after checking the frame codec splits it exactly.
fn body(name: &str) -> Vec<u8> {
    let bytes = frame(name);
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let out = FrameDecoder::default()
        .decode(&mut buf)
        .expect("golden frame decodes")
        .expect("golden frame is whole");
    assert!(buf.is_empty());
    out.to_vec()
}

/// Re-encodes a request with our encoder and compares with the captured frame.
fn assert_request(name: &str, xid: i32, expected: &Request) {
    let body = body(name);
    let (header, request) = Request::decode_frame(&body).expect(name);
    assert_eq!(header.xid, xid, "{name}");
    assert_eq!(&request, expected, "{name}");
    let mut ours = Vec::new();
    encode_frame(&mut ours, |o| expected.encode(xid, o));
    assert_eq!(ours, frame(name), "{name}: our encoding differs");
}

/// Decodes a reply to `op`, and checks our encoding of it is byte-identical.
fn reply(name: &str, op: OpCode) -> (ReplyHeader, Option<Response>) {
    let body = body(name);
    let mut r = Reader::new(&body);
    let header = ReplyHeader::decode(&mut r).expect(name);
    let response = if header.err == 0 && header.xid >= 0 {
        Some(Response::decode(op, &mut r).expect(name))
    } else {
        None
    };
    r.finish().expect(name);
    let mut ours = Vec::new();
    encode_frame(&mut ours, |o| {
        header.encode(o);
        if let Some(resp) = &response {
            resp.encode(o);
        }
    });
    assert_eq!(ours, frame(name), "{name}: our encoding differs");
    (header, response)
}

fn open_acl() -> Vec<Acl> {
    Acl::open_unsafe()
}

#[test]
fn connect_request() {
    let body = body("connect_request");
    let req = ConnectRequest::from_frame(&body).expect("connect request");
    let expected = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 4000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: false,
    };
    assert_eq!(req, expected);
    let mut ours = Vec::new();
    encode_frame(&mut ours, |o| expected.encode(o));
    assert_eq!(ours, frame("connect_request"));
}

#[test]
fn connect_response() {
    let body = body("connect_response");
    let resp = ConnectResponse::from_frame(&body).expect("connect response");
    assert_eq!(resp.protocol_version, 0);
    assert_eq!(resp.timeout, 4000);
    assert_ne!(resp.session_id, 0);
    assert_eq!(resp.passwd.len(), 16);
    assert!(!resp.read_only);
    let mut ours = Vec::new();
    encode_frame(&mut ours, |o| resp.encode(o));
    assert_eq!(ours, frame("connect_response"));
}

#[test]
fn create() {
    assert_request(
        "create_request",
        1,
        &Request::Create(CreateRequest {
            path: "/golden".into(),
            data: b"hello".to_vec(),
            acl: open_acl(),
            flags: CreateMode::Persistent,
        }),
    );
    let (h, r) = reply("create_response", OpCode::Create);
    assert_eq!((h.xid, h.err), (1, 0));
    assert_eq!(
        r,
        Some(Response::Create(CreateResponse {
            path: "/golden".into()
        }))
    );
}

#[test]
fn create2() {
    assert_request(
        "create2_request",
        4,
        &Request::Create2(CreateRequest {
            path: "/golden-c2".into(),
            data: b"c2".to_vec(),
            acl: open_acl(),
            flags: CreateMode::Persistent,
        }),
    );
    let (h, r) = reply("create2_response", OpCode::Create2);
    let Some(Response::Create2(c)) = r else {
        panic!("create2 reply expected, got {r:?}")
    };
    assert_eq!(c.path, "/golden-c2");
    assert_eq!(c.stat.czxid, h.zxid);
    assert_eq!(c.stat.data_length, 2);
}

#[test]
fn get_data() {
    assert_request(
        "get_data_request",
        2,
        &Request::GetData(WatchedRequest {
            path: "/golden".into(),
            watch: false,
        }),
    );
    assert_request(
        "get_data_watch_request",
        3,
        &Request::GetData(WatchedRequest {
            path: "/golden".into(),
            watch: true,
        }),
    );
    let (h, r) = reply("get_data_response", OpCode::GetData);
    let Some(Response::GetData(d)) = r else {
        panic!("getData reply expected, got {r:?}")
    };
    assert_eq!(h.xid, 2);
    assert_eq!(d.data, b"hello");
    assert_eq!(d.stat.version, 0);
    assert_eq!(d.stat.data_length, 5);
    assert_eq!(d.stat.czxid, d.stat.mzxid);
    assert_eq!(d.stat.ctime, d.stat.mtime);
}

#[test]
fn error_reply_has_no_body() {
    let (h, r) = reply("get_data_nonode_response", OpCode::GetData);
    assert_eq!(h.err, ErrorCode::NoNode.code());
    assert_eq!(r, None);
    assert_eq!(body("get_data_nonode_response").len(), 16);
}

#[test]
fn set_data() {
    assert_request(
        "set_data_request",
        1,
        &Request::SetData(SetDataRequest {
            path: "/golden".into(),
            data: b"world".to_vec(),
            version: -1,
        }),
    );
    let (_, r) = reply("set_data_response", OpCode::SetData);
    let Some(Response::Stat(s)) = r else {
        panic!("setData reply expected, got {r:?}")
    };
    assert_eq!(s.stat.version, 1);
}

#[test]
fn failed_multi() {
    let create = |path: &str| {
        MultiOp::Create(CreateRequest {
            path: path.into(),
            data: vec![],
            acl: open_acl(),
            flags: CreateMode::Persistent,
        })
    };
    assert_request(
        "multi_request",
        6,
        &Request::Multi(MultiRequest {
            ops: vec![create("/golden/a"), create("/golden")],
        }),
    );
    let (h, r) = reply("multi_response", OpCode::Multi);
    assert_eq!(h.err, 0, "a failed multi still has a zero header code");
    let Some(Response::Multi(m)) = r else {
        panic!("multi reply expected, got {r:?}")
    };
    assert_eq!(
        m.results,
        vec![
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::NodeExists)
        ]
    );
    assert_eq!(m.first_error(), Some((1, ErrorCode::NodeExists)));
}

#[test]
fn watch_notification() {
    let body = body("watch_notification");
    let mut r = Reader::new(&body);
    let h = ReplyHeader::decode(&mut r).expect("header");
    assert_eq!(h.xid, NOTIFICATION_XID);
    let event = WatcherEvent::decode(&mut r).expect("event");
    r.finish().expect("no trailing bytes");
    assert_eq!(
        event,
        WatcherEvent {
            event_type: EventType::NodeDataChanged,
            state: KeeperState::SyncConnected,
            path: "/golden".into()
        }
    );
    let mut ours = Vec::new();
    encode_frame(&mut ours, |o| {
        h.encode(o);
        event.encode(o);
    });
    assert_eq!(ours, frame("watch_notification"));
}

#[test]
fn ping_and_close() {
    assert_request("ping_request", PING_XID, &Request::Ping);
    let (h, r) = reply("ping_response", OpCode::Ping);
    assert_eq!((h.xid, h.err, r), (PING_XID, 0, None));
    assert_request("close_request", 7, &Request::CloseSession);
    let (h, r) = reply("close_response", OpCode::CloseSession);
    assert_eq!((h.xid, h.err, r), (7, 0, Some(Response::Empty)));
}
