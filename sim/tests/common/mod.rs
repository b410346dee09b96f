//! A tiny raw ZooKeeper client built only from `zkit::proto`, to drive the simulated server
//! byte for byte in tests (no dependency on the real client, which is built elsewhere).

#![allow(dead_code)]

use std::collections::VecDeque;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zkit::proto::*;

/// One raw connection.
pub struct Raw<S> {
    stream: S,
    buf: BytesMut,
    decoder: FrameDecoder,
    next_xid: i32,
    /// Notifications received and not yet taken, with their header zxid.
    pub events: VecDeque<(i64, WatcherEvent)>,
    /// The handshake's answer.
    pub session: ConnectResponse,
    /// The zxid of the last reply.
    pub last_zxid: i64,
}

/// A reply: header and body (or the error code).
pub type Reply = (ReplyHeader, Result<Response, ErrorCode>);

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    /// Handshakes on `stream`.
    pub async fn handshake(
        stream: S,
        session_id: i64,
        passwd: Vec<u8>,
        timeout: i32,
        last_zxid: i64,
    ) -> std::io::Result<Option<Self>> {
        let mut raw = Raw {
            stream,
            buf: BytesMut::new(),
            decoder: FrameDecoder::default(),
            next_xid: 1,
            events: VecDeque::new(),
            session: ConnectResponse::default(),
            last_zxid,
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            timeout,
            session_id,
            passwd,
            read_only: false,
        };
        let mut out = Vec::new();
        encode_frame(&mut out, |b| req.encode(b));
        raw.stream.write_all(&out).await?;
        let Some(frame) = raw.read_frame().await? else {
            return Ok(None);
        };
        raw.session = ConnectResponse::from_frame(&frame)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(Some(raw))
    }

    /// Writes raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next frame, `None` on EOF.
    pub async fn read_frame(&mut self) -> std::io::Result<Option<BytesMut>> {
        loop {
            if let Some(f) = self
                .decoder
                .decode(&mut self.buf)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
            {
                return Ok(Some(f));
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Sends a request and waits for its reply (buffering notifications that come first).
    pub async fn call(&mut self, req: &Request) -> Reply {
        let xid = match req.reserved_xid() {
            Some(x) => x,
            None => {
                self.next_xid += 1;
                self.next_xid
            }
        };
        let mut out = Vec::new();
        encode_frame(&mut out, |b| req.encode(xid, b));
        self.stream.write_all(&out).await.expect("write request");
        loop {
            let frame = self
                .read_frame()
                .await
                .expect("read")
                .expect("reply before EOF");
            let mut r = Reader::new(&frame);
            let header = ReplyHeader::decode(&mut r).expect("reply header");
            if header.xid == NOTIFICATION_XID {
                let ev = WatcherEvent::decode(&mut r).expect("event");
                self.events.push_back((header.zxid, ev));
                continue;
            }
            assert_eq!(header.xid, xid, "replies come in request order");
            self.last_zxid = header.zxid;
            if header.err != 0 {
                let code = ErrorCode::try_from(header.err).expect("known error code");
                return (header, Err(code));
            }
            let body = Response::decode(req.op_code(), &mut r).expect("reply body");
            r.finish().expect("no trailing bytes");
            return (header, Ok(body));
        }
    }

    /// Like [`call`](Self::call), only the result.
    pub async fn ask(&mut self, req: Request) -> Result<Response, ErrorCode> {
        self.call(&req).await.1
    }

    /// The next notification (buffered, or read from the wire).
    pub async fn next_event(&mut self) -> WatcherEvent {
        if let Some((_, ev)) = self.events.pop_front() {
            return ev;
        }
        let frame = self
            .read_frame()
            .await
            .expect("read")
            .expect("event before EOF");
        let mut r = Reader::new(&frame);
        let header = ReplyHeader::decode(&mut r).expect("header");
        assert_eq!(header.xid, NOTIFICATION_XID, "expected a notification");
        WatcherEvent::decode(&mut r).expect("event")
    }

    /// Whether the server closed the connection (reads until EOF or error).
    pub async fn closed(&mut self) -> bool {
        let mut scratch = [0u8; 256];
        loop {
            match self.stream.read(&mut scratch).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    }

    /// Pings (also proves that nothing else is queued before its reply).
    pub async fn ping(&mut self) {
        let (h, r) = self.call(&Request::Ping).await;
        assert_eq!(h.xid, PING_XID);
        assert_eq!(r, Ok(Response::Empty));
    }

    // --- one helper per common operation ---

    pub async fn create(
        &mut self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<String, ErrorCode> {
        self.create_acl(path, data, mode, Acl::open_unsafe()).await
    }

    pub async fn create_acl(
        &mut self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
        acl: Vec<Acl>,
    ) -> Result<String, ErrorCode> {
        match self
            .ask(Request::Create(CreateRequest {
                path: path.into(),
                data: data.to_vec(),
                acl,
                flags: mode,
            }))
            .await?
        {
            Response::Create(c) => Ok(c.path),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn get(&mut self, path: &str, watch: bool) -> Result<(Vec<u8>, Stat), ErrorCode> {
        match self
            .ask(Request::GetData(WatchedRequest {
                path: path.into(),
                watch,
            }))
            .await?
        {
            Response::GetData(d) => Ok((d.data, d.stat)),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn exists(&mut self, path: &str, watch: bool) -> Result<Stat, ErrorCode> {
        match self
            .ask(Request::Exists(WatchedRequest {
                path: path.into(),
                watch,
            }))
            .await?
        {
            Response::Stat(s) => Ok(s.stat),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn set(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, ErrorCode> {
        match self
            .ask(Request::SetData(SetDataRequest {
                path: path.into(),
                data: data.to_vec(),
                version,
            }))
            .await?
        {
            Response::Stat(s) => Ok(s.stat),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn delete(&mut self, path: &str, version: i32) -> Result<(), ErrorCode> {
        self.ask(Request::Delete(DeleteRequest {
            path: path.into(),
            version,
        }))
        .await
        .map(|_| ())
    }

    pub async fn children(&mut self, path: &str, watch: bool) -> Result<Vec<String>, ErrorCode> {
        match self
            .ask(Request::GetChildren(WatchedRequest {
                path: path.into(),
                watch,
            }))
            .await?
        {
            Response::GetChildren(c) => Ok(c.children),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn add_auth(&mut self, scheme: &str, auth: &[u8]) -> Result<(), ErrorCode> {
        self.ask(Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: auth.to_vec(),
        }))
        .await
        .map(|_| ())
    }
}
