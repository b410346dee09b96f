//! The raw codec against a real Apache ZooKeeper: handshake, create, get, ping and close,
//! framed and parsed by `zkit::proto` alone (no client), proving the codec talks to the real
//! thing.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zkit::proto::*;
use zkit_tests::ZkServer;

struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl Raw {
    async fn send(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let mut out = Vec::new();
        encode_frame(&mut out, write);
        self.stream.write_all(&out).await.expect("write to server");
    }

    async fn frame(&mut self) -> Vec<u8> {
        loop {
            if let Some(f) = self
                .decoder
                .decode(&mut self.buf)
                .expect("well-formed frame")
            {
                return f.to_vec();
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .expect("read from server");
            assert!(n > 0, "server closed the connection");
        }
    }

    /// Sends a request and returns the reply header and the rest of the frame.
    async fn call(&mut self, xid: i32, request: &Request) -> (ReplyHeader, Option<Response>) {
        self.send(|o| request.encode(xid, o)).await;
        let f = self.frame().await;
        let mut r = Reader::new(&f);
        let h = ReplyHeader::decode(&mut r).expect("reply header");
        assert_eq!(h.xid, xid);
        if h.err != 0 {
            return (h, None);
        }
        let resp = Response::decode(request.op_code(), &mut r).expect("reply body");
        r.finish().expect("no trailing bytes");
        (h, Some(resp))
    }
}

#[tokio::test]
async fn raw_codec_speaks_to_real_zookeeper() {
    let zk = ZkServer::standalone().expect("a real ZooKeeper must start for this test");
    let addr = zk.address(0).expect("address");
    let stream = TcpStream::connect(addr).await.expect("connect");
    let mut raw = Raw {
        stream,
        buf: BytesMut::new(),
        decoder: FrameDecoder::default(),
    };

    let hello = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 6000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: false,
    };
    raw.send(|o| hello.encode(o)).await;
    let resp = ConnectResponse::from_frame(&raw.frame().await).expect("connect response");
    assert_ne!(resp.session_id, 0);
    assert!(
        resp.timeout > 0 && resp.timeout <= 6000,
        "negotiated {}",
        resp.timeout
    );
    assert_eq!(resp.passwd.len(), 16);

    let create = Request::Create2(CreateRequest {
        path: "/raw".into(),
        data: b"bytes".to_vec(),
        acl: Acl::open_unsafe(),
        flags: CreateMode::Ephemeral,
    });
    let (h, r) = raw.call(1, &create).await;
    let Some(Response::Create2(c)) = r else {
        panic!("create2 reply expected, got {h:?} {r:?}")
    };
    assert_eq!(c.path, "/raw");
    assert_eq!(c.stat.ephemeral_owner, resp.session_id);
    assert_eq!(c.stat.czxid, h.zxid);

    let (h, _) = raw.call(2, &create).await;
    assert_eq!(h.err, ErrorCode::NodeExists.code());

    let get = Request::GetData(WatchedRequest {
        path: "/raw".into(),
        watch: false,
    });
    let (_, r) = raw.call(3, &get).await;
    let Some(Response::GetData(d)) = r else {
        panic!("getData reply expected, got {r:?}")
    };
    assert_eq!(d.data, b"bytes");
    assert_eq!(d.stat, c.stat);

    let (h, r) = raw.call(PING_XID, &Request::Ping).await;
    assert_eq!((h.err, r), (0, Some(Response::Empty)));

    let (h, _) = raw.call(4, &Request::CloseSession).await;
    assert_eq!(h.err, 0);
    // After closeSession the server closes the connection.
    let mut rest = Vec::new();
    let n = raw.stream.read_to_end(&mut rest).await.unwrap_or(0);
    assert_eq!(n, 0, "nothing follows the close reply");
}
