//! Server-to-server messages and the links that carry them over turmoil TCP.
//!
//! Every pair of servers shares one connection: the lower id dials the higher one (port
//! [`PEER_PORT`]) and says who it is with [`Msg::Hello`]. Frames are length-prefixed like the
//! client protocol. turmoil TCP never retransmits, so a partition can stall a stream
//! silently: the node drops a link it has not heard from for long enough (`initLimit` or
//! `syncLimit` ticks for a link carrying a replication session, as ZooKeeper's socket
//! timeouts; six heartbeats otherwise), and the dialing side dials again. Frames sent while there is no link are dropped, and frames
//! queued on a replaced link may never arrive, so a new link never continues the stream of
//! the old one: a replication session ends with its link (`Node::check_session_link`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};
use zkit::proto::{encode_frame, DecodeError, FrameDecoder, Id, Reader, Record, Writer};

use super::log::{decode_entry, decode_origin, encode_entry, encode_origin, Entry};
use super::snapshot::{Snapshot, SnapshotError};
use crate::server::{Origin, Submission, SubmitKind};

/// The port servers listen on for each other.
pub const PEER_PORT: u16 = 2888;

/// Largest peer frame (a snapshot carries a whole log).
const MAX_PEER_FRAME: usize = 64 << 20;

/// A server's role as announced in [`Msg::Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Electing.
    Looking,
    /// Following a leader (syncing or synced).
    Following,
    /// Leading (prospective or established).
    Leading,
}

/// How a leader syncs a follower, as ZooKeeper's `LearnerHandler` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncKind {
    /// `DIFF`: the follower's last zxid is in the leader's history; append what follows.
    Diff,
    /// `TRUNC`: the follower logged entries the leader's history does not have (from an
    /// older epoch, never committed): drop every entry after `to`, then append.
    Trunc {
        /// The last zxid the follower keeps.
        to: i64,
    },
    /// `SNAP`: the follower is behind the leader's snapshot (the log it needs was
    /// compacted): replace its whole state with the snapshot, then append.
    Snap(Box<Snapshot>),
}

impl SyncKind {
    /// `diff`, `trunc` or `snap`, as the event log names it.
    pub fn name(&self) -> &'static str {
        match self {
            SyncKind::Diff => "diff",
            SyncKind::Trunc { .. } => "trunc",
            SyncKind::Snap(_) => "snap",
        }
    }
}

/// One peer message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// First frame of a dialed link: the dialer's id.
    Hello {
        /// The dialer.
        from: u8,
    },
    /// Heartbeat and election state, sent to everyone every heartbeat.
    Status {
        /// The sender's role.
        role: Role,
        /// Whether the sender is an established leader.
        established: bool,
        /// Epoch it last promised.
        accepted_epoch: u32,
        /// Epoch of its history.
        current_epoch: u32,
        /// Its last logged zxid.
        last_zxid: i64,
    },
    /// A prospective or established leader asks the receiver to follow it in `epoch`.
    NewEpoch {
        /// The new epoch.
        epoch: u32,
        /// Whether the leader already has a quorum.
        established: bool,
    },
    /// A follower promises `epoch` and says how far its history goes.
    AckEpoch {
        /// The epoch promised.
        epoch: u32,
        /// The follower's current epoch.
        current_epoch: u32,
        /// The follower's last logged zxid.
        last_zxid: i64,
        /// The zxid of the follower's snapshot (it cannot truncate below it).
        snapshot_zxid: i64,
    },
    /// The leader brings a follower's history in line with its own ([`SyncKind`]), then
    /// `entries` are appended, and says how far it committed.
    Sync {
        /// The leader's epoch.
        epoch: u32,
        /// Diff, truncation or snapshot.
        kind: SyncKind,
        /// The entries to append (after the truncation point or the snapshot).
        entries: Vec<Entry>,
        /// Highest committed zxid (0 while the leader is not established).
        commit: i64,
    },
    /// The follower logged the sync.
    AckSync {
        /// The leader's epoch.
        epoch: u32,
    },
    /// A new transaction to log.
    Propose {
        /// The leader's epoch.
        epoch: u32,
        /// The transaction.
        entry: Entry,
    },
    /// The follower logged everything up to `zxid`.
    Ack {
        /// The leader's epoch.
        epoch: u32,
        /// Highest zxid logged.
        zxid: i64,
    },
    /// Everything up to `zxid` is committed.
    Commit {
        /// The leader's epoch.
        epoch: u32,
        /// The commit point.
        zxid: i64,
    },
    /// A follower forwards a client's write, session change or sync.
    Forward(Submission),
    /// Everything ordered before the sync of `(conn, xid)` has been sent to its server.
    SyncDone {
        /// The connection on the follower.
        conn: u64,
        /// The sync's xid.
        xid: i32,
    },
    /// Sessions active on a follower since its last report.
    Touch(Vec<i64>),
    /// The leader's answer to a `REVALIDATE` of the session reconnecting on `conn`.
    Revalidated {
        /// The connection on the follower.
        conn: u64,
        /// The session.
        session_id: i64,
        /// Whether the session lives (the handshake completes) or not (expired).
        valid: bool,
    },
}

fn put_submission(out: &mut Vec<u8>, s: &Submission) {
    encode_origin(out, &s.origin);
    match &s.kind {
        SubmitKind::Request { frame, auth } => {
            out.put_i32(0);
            out.put_buffer(frame);
            out.put_len(auth.len());
            for id in auth {
                id.encode(out);
            }
        }
        SubmitKind::CreateSession { timeout_ms } => {
            out.put_i32(1);
            out.put_i32(*timeout_ms);
        }
        SubmitKind::CloseSession => out.put_i32(2),
        SubmitKind::DeleteContainer { path } => {
            out.put_i32(3);
            out.put_string(path);
        }
        SubmitKind::Sync => out.put_i32(4),
        SubmitKind::Revalidate { timeout_ms } => {
            out.put_i32(5);
            out.put_i32(*timeout_ms);
        }
    }
}

fn get_submission(r: &mut Reader<'_>) -> Result<Submission, DecodeError> {
    let origin: Origin = decode_origin(r)?;
    let kind = match r.read_i32()? {
        0 => SubmitKind::Request {
            frame: r.read_buffer()?,
            auth: r.read_vec(Id::MIN_SIZE, Id::decode)?,
        },
        1 => SubmitKind::CreateSession {
            timeout_ms: r.read_i32()?,
        },
        2 => SubmitKind::CloseSession,
        3 => SubmitKind::DeleteContainer {
            path: r.read_string()?,
        },
        4 => SubmitKind::Sync,
        5 => SubmitKind::Revalidate {
            timeout_ms: r.read_i32()?,
        },
        value => {
            return Err(DecodeError::UnknownValue {
                kind: "submission",
                value,
            })
        }
    };
    Ok(Submission { origin, kind })
}

fn epoch(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    let v = r.read_i32()?;
    u32::try_from(v).map_err(|_| DecodeError::UnknownValue {
        kind: "epoch",
        value: v,
    })
}

fn put_epoch(out: &mut Vec<u8>, e: u32) {
    out.put_i32(i32::try_from(e).unwrap_or(i32::MAX));
}

impl Msg {
    /// The message as one frame (length prefix included).
    pub fn to_frame(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, |b| self.encode_body(b));
        out
    }

    fn encode_body(&self, b: &mut Vec<u8>) {
        match self {
            Msg::Hello { from } => {
                b.put_i32(0);
                b.put_i32(i32::from(*from));
            }
            Msg::Status {
                role,
                established,
                accepted_epoch,
                current_epoch,
                last_zxid,
            } => {
                b.put_i32(1);
                b.put_i32(*role as i32);
                b.put_bool(*established);
                put_epoch(b, *accepted_epoch);
                put_epoch(b, *current_epoch);
                b.put_i64(*last_zxid);
            }
            Msg::NewEpoch { epoch, established } => {
                b.put_i32(2);
                put_epoch(b, *epoch);
                b.put_bool(*established);
            }
            Msg::AckEpoch {
                epoch,
                current_epoch,
                last_zxid,
                snapshot_zxid,
            } => {
                b.put_i32(3);
                put_epoch(b, *epoch);
                put_epoch(b, *current_epoch);
                b.put_i64(*last_zxid);
                b.put_i64(*snapshot_zxid);
            }
            Msg::Sync {
                epoch,
                kind,
                entries,
                commit,
            } => {
                b.put_i32(4);
                put_epoch(b, *epoch);
                match kind {
                    SyncKind::Diff => b.put_i32(0),
                    SyncKind::Trunc { to } => {
                        b.put_i32(1);
                        b.put_i64(*to);
                    }
                    SyncKind::Snap(snapshot) => {
                        b.put_i32(2);
                        snapshot.encode(b);
                    }
                }
                b.put_len(entries.len());
                for e in entries {
                    encode_entry(b, e);
                }
                b.put_i64(*commit);
            }
            Msg::AckSync { epoch } => {
                b.put_i32(5);
                put_epoch(b, *epoch);
            }
            Msg::Propose { epoch, entry } => {
                b.put_i32(6);
                put_epoch(b, *epoch);
                encode_entry(b, entry);
            }
            Msg::Ack { epoch, zxid } => {
                b.put_i32(7);
                put_epoch(b, *epoch);
                b.put_i64(*zxid);
            }
            Msg::Commit { epoch, zxid } => {
                b.put_i32(8);
                put_epoch(b, *epoch);
                b.put_i64(*zxid);
            }
            Msg::Forward(s) => {
                b.put_i32(9);
                put_submission(b, s);
            }
            Msg::SyncDone { conn, xid } => {
                b.put_i32(10);
                b.put_i64(i64::try_from(*conn).unwrap_or(0));
                b.put_i32(*xid);
            }
            Msg::Touch(ids) => {
                b.put_i32(11);
                b.put_len(ids.len());
                for id in ids {
                    b.put_i64(*id);
                }
            }
            Msg::Revalidated {
                conn,
                session_id,
                valid,
            } => {
                b.put_i32(12);
                b.put_i64(i64::try_from(*conn).unwrap_or(0));
                b.put_i64(*session_id);
                b.put_bool(*valid);
            }
        }
    }

    /// Decodes one frame body.
    pub fn decode(body: &[u8]) -> Result<Msg, DecodeError> {
        let mut r = Reader::new(body);
        let r = &mut r;
        let msg = match r.read_i32()? {
            0 => {
                let v = r.read_i32()?;
                Msg::Hello {
                    from: u8::try_from(v).map_err(|_| DecodeError::UnknownValue {
                        kind: "server id",
                        value: v,
                    })?,
                }
            }
            1 => {
                let role = match r.read_i32()? {
                    0 => Role::Looking,
                    1 => Role::Following,
                    2 => Role::Leading,
                    value => {
                        return Err(DecodeError::UnknownValue {
                            kind: "role",
                            value,
                        })
                    }
                };
                Msg::Status {
                    role,
                    established: r.read_bool()?,
                    accepted_epoch: epoch(r)?,
                    current_epoch: epoch(r)?,
                    last_zxid: r.read_i64()?,
                }
            }
            2 => Msg::NewEpoch {
                epoch: epoch(r)?,
                established: r.read_bool()?,
            },
            3 => Msg::AckEpoch {
                epoch: epoch(r)?,
                current_epoch: epoch(r)?,
                last_zxid: r.read_i64()?,
                snapshot_zxid: r.read_i64()?,
            },
            4 => Msg::Sync {
                epoch: epoch(r)?,
                kind: match r.read_i32()? {
                    0 => SyncKind::Diff,
                    1 => SyncKind::Trunc { to: r.read_i64()? },
                    2 => match Snapshot::decode(r) {
                        Ok(s) => SyncKind::Snap(Box::new(s)),
                        Err(SnapshotError::Decode(e)) => return Err(e),
                        Err(e) => {
                            // Not a framing error: the rebuilt tree would differ. Refuse the
                            // message (the link drops, the follower syncs again).
                            tracing::warn!("{e}");
                            return Err(DecodeError::UnknownValue {
                                kind: "snapshot",
                                value: 0,
                            });
                        }
                    },
                    value => {
                        return Err(DecodeError::UnknownValue {
                            kind: "sync kind",
                            value,
                        })
                    }
                },
                entries: r.read_vec(36, decode_entry)?,
                commit: r.read_i64()?,
            },
            5 => Msg::AckSync { epoch: epoch(r)? },
            6 => Msg::Propose {
                epoch: epoch(r)?,
                entry: decode_entry(r)?,
            },
            7 => Msg::Ack {
                epoch: epoch(r)?,
                zxid: r.read_i64()?,
            },
            8 => Msg::Commit {
                epoch: epoch(r)?,
                zxid: r.read_i64()?,
            },
            9 => Msg::Forward(get_submission(r)?),
            10 => Msg::SyncDone {
                conn: u64::try_from(r.read_i64()?).unwrap_or(0),
                xid: r.read_i32()?,
            },
            11 => Msg::Touch(r.read_vec(8, |r| r.read_i64())?),
            12 => Msg::Revalidated {
                conn: u64::try_from(r.read_i64()?).unwrap_or(0),
                session_id: r.read_i64()?,
                valid: r.read_bool()?,
            },
            value => {
                return Err(DecodeError::UnknownValue {
                    kind: "peer message",
                    value,
                })
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

/// What links report to their node.
#[derive(Debug)]
pub enum LinkEvent {
    /// A link to `peer` is up: frames for it go to `tx`; `kill` ends it.
    Up {
        /// The peer.
        peer: u8,
        /// This link's number (a newer link replaces an older one).
        link: u64,
        /// Where to queue outgoing frames.
        tx: mpsc::UnboundedSender<Vec<u8>>,
        /// Notified to end the link.
        kill: Arc<Notify>,
    },
    /// A message arrived on link `link` from `peer`.
    Msg {
        /// The peer.
        peer: u8,
        /// The link.
        link: u64,
        /// The message.
        msg: Msg,
    },
    /// The link ended.
    Down {
        /// The peer.
        peer: u8,
        /// The link.
        link: u64,
    },
}

/// Numbers links on one node.
#[derive(Debug, Default)]
pub struct LinkIds(AtomicU64);

impl LinkIds {
    /// The next link number.
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Runs one link until it fails or is killed. `peer` is known when we dialed (then we say
/// hello first) and learnt from the first frame when we accepted.
pub async fn run_link<S>(
    stream: S,
    me: u8,
    dialed: Option<u8>,
    link: u64,
    events: mpsc::UnboundedSender<LinkEvent>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let decoder = FrameDecoder::new(MAX_PEER_FRAME);
    let mut buf = BytesMut::with_capacity(4096);
    let peer = match dialed {
        Some(peer) => {
            if wr
                .write_all(&Msg::Hello { from: me }.to_frame())
                .await
                .is_err()
            {
                let _ = events.send(LinkEvent::Down { peer, link });
                return;
            }
            peer
        }
        None => match read_msg(&mut rd, &mut buf, &decoder).await {
            Some(Msg::Hello { from }) => from,
            _ => return,
        },
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let kill = Arc::new(Notify::new());
    if events
        .send(LinkEvent::Up {
            peer,
            link,
            tx,
            kill: kill.clone(),
        })
        .is_err()
    {
        return;
    }
    let writer = async {
        while let Some(frame) = rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                return;
            }
        }
    };
    let reader = async {
        while let Some(msg) = read_msg(&mut rd, &mut buf, &decoder).await {
            if events.send(LinkEvent::Msg { peer, link, msg }).is_err() {
                return;
            }
        }
    };
    tokio::select! {
        biased;
        _ = kill.notified() => {}
        _ = writer => {}
        _ = reader => {}
    }
    let _ = events.send(LinkEvent::Down { peer, link });
}

async fn read_msg<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    decoder: &FrameDecoder,
) -> Option<Msg> {
    loop {
        match decoder.decode(buf) {
            Ok(Some(frame)) => return Msg::decode(&frame).ok(),
            Ok(None) => {}
            Err(_) => return None,
        }
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}
