//! Each server's durable state: its latest snapshot, its transaction log after it, the
//! epochs it promised and accepted, and how far it knows the log committed. It lives in the
//! ensemble's `World`, outside the turmoil host, so it survives `crash` and `bounce` the way
//! a disk does; a restarted server starts from its snapshot plus the replay of its committed
//! log.
//!
//! Appends are fsynced at once unless the fault option [`EnsembleConfig::ack_before_fsync`]
//! is on, in which case followers fsync lazily and [`Store::crash`] drops the tail that was
//! not yet fsynced. A snapshot is written durably ([`Store::compact`] takes one every
//! [`EnsembleConfig::snapshot_every`] committed entries and drops the entries it covers).
//!
//! [`EnsembleConfig::ack_before_fsync`]: super::EnsembleConfig::ack_before_fsync
//! [`EnsembleConfig::snapshot_every`]: super::EnsembleConfig::snapshot_every

use zkit::proto::{Acl, DecodeError, ErrorCode, Reader, Record, Writer};

use super::snapshot::Snapshot;
use crate::server::tree::DataTree;
use crate::server::txn::{CreateReply, CreateTxn, Txn, TxnHeader};
use crate::server::Origin;

/// One logged transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its header (zxid, session, cxid, time).
    pub header: TxnHeader,
    /// The transaction.
    pub txn: Txn,
    /// Which client asked for it, so the server it is connected to can answer.
    pub origin: Option<Origin>,
}

impl Entry {
    /// The entry's zxid.
    pub fn zxid(&self) -> i64 {
        self.header.zxid
    }
}

/// A server's durable state.
#[derive(Debug, Clone, Default)]
pub struct Store {
    /// Highest epoch this server promised to a prospective leader.
    pub accepted_epoch: u32,
    /// Epoch of the leader this server last synced with.
    pub current_epoch: u32,
    /// The latest snapshot (every committed transaction up to its zxid), if any.
    pub snapshot: Option<Snapshot>,
    /// The log after the snapshot, in zxid order.
    pub log: Vec<Entry>,
    /// Highest zxid known committed.
    pub committed: i64,
    /// How many boots this server has had.
    pub incarnation: u32,
    fsynced: usize,
}

impl Store {
    /// The zxid of the snapshot (0 without one): the log starts after it.
    pub fn base(&self) -> i64 {
        self.snapshot.as_ref().map_or(0, |s| s.zxid)
    }

    /// The last logged zxid (the snapshot's when the log is empty).
    pub fn last_zxid(&self) -> i64 {
        self.log.last().map_or_else(|| self.base(), Entry::zxid)
    }

    /// Appends an entry; `durable` fsyncs it (and everything before it) at once.
    pub fn append(&mut self, entry: Entry, durable: bool) {
        self.log.push(entry);
        if durable {
            self.fsync();
        }
    }

    /// Makes everything logged so far durable.
    pub fn fsync(&mut self) {
        self.fsynced = self.log.len();
    }

    /// Replaces the snapshot and the log (a `SNAP` from the leader), durably.
    pub fn install(&mut self, snapshot: Snapshot, log: Vec<Entry>) {
        self.committed = snapshot.zxid;
        self.snapshot = Some(snapshot);
        self.log = log;
        self.fsync();
    }

    /// Drops the log entries after `zxid` (a `TRUNC` from the leader), durably. Refused
    /// (false) when `zxid` is below the snapshot, which cannot be undone.
    pub fn truncate(&mut self, zxid: i64) -> bool {
        if zxid < self.base() {
            return false;
        }
        let keep = self.log.partition_point(|e| e.zxid() <= zxid);
        self.log.truncate(keep);
        self.committed = self.committed.min(self.last_zxid());
        self.fsync();
        true
    }

    /// A crash: the tail that was not fsynced is gone.
    pub fn crash(&mut self) {
        self.log.truncate(self.fsynced);
        self.committed = self.committed.min(self.last_zxid());
    }

    /// Position of `zxid` in the log.
    pub fn index_of(&self, zxid: i64) -> Option<usize> {
        self.log.binary_search_by_key(&zxid, Entry::zxid).ok()
    }

    /// Whether `zxid` is this server's history: the snapshot's zxid or a logged one.
    pub fn holds(&self, zxid: i64) -> bool {
        zxid == self.base() || self.index_of(zxid).is_some()
    }

    /// The entries after `zxid` (the whole log for the snapshot's zxid), or `None` if
    /// `zxid` is neither logged here nor the snapshot's.
    pub fn after(&self, zxid: i64) -> Option<&[Entry]> {
        if zxid == self.base() {
            return Some(&self.log);
        }
        self.index_of(zxid).map(|i| &self.log[i + 1..])
    }

    /// The committed part of the log.
    pub fn committed_log(&self) -> &[Entry] {
        let n = self.log.partition_point(|e| e.zxid() <= self.committed);
        &self.log[..n]
    }

    /// The tree after the snapshot and the log up to `zxid`.
    pub fn replay(&self, zxid: i64) -> DataTree {
        let mut tree = self
            .snapshot
            .as_ref()
            .map_or_else(DataTree::new, |s| s.tree.clone());
        for e in self.log.iter().take_while(|e| e.zxid() <= zxid) {
            tree.apply(&e.header, &e.txn);
        }
        tree
    }

    /// Once at least `every` committed entries are logged (0: never), snapshots the
    /// committed state and drops the entries it covers; returns the new snapshot's zxid.
    pub fn compact(&mut self, every: usize) -> Option<i64> {
        let covered = self.committed_log().len();
        if every == 0 || covered < every {
            return None;
        }
        let tree = self.replay(self.committed);
        self.snapshot = Some(Snapshot {
            zxid: self.committed,
            tree,
        });
        self.log.drain(..covered);
        self.fsynced = self.fsynced.saturating_sub(covered);
        Some(self.committed)
    }
}

fn put_acl(out: &mut Vec<u8>, acl: &[Acl]) {
    out.put_len(acl.len());
    for a in acl {
        a.encode(out);
    }
}

fn get_acl(r: &mut Reader<'_>) -> Result<Vec<Acl>, DecodeError> {
    r.read_vec(Acl::MIN_SIZE, Acl::decode)
}

/// Appends a transaction's bytes.
pub fn encode_txn(out: &mut Vec<u8>, txn: &Txn) {
    match txn {
        Txn::Create(c) => {
            out.put_i32(0);
            out.put_string(&c.path);
            out.put_buffer(&c.data);
            put_acl(out, &c.acl);
            out.put_i64(c.ephemeral_owner);
            out.put_i32(c.parent_cversion);
            out.put_bool(c.reply == CreateReply::PathAndStat);
        }
        Txn::Delete { path } => {
            out.put_i32(1);
            out.put_string(path);
        }
        Txn::SetData {
            path,
            data,
            version,
        } => {
            out.put_i32(2);
            out.put_string(path);
            out.put_buffer(data);
            out.put_i32(*version);
        }
        Txn::SetAcl { path, acl, version } => {
            out.put_i32(3);
            out.put_string(path);
            put_acl(out, acl);
            out.put_i32(*version);
        }
        Txn::Check { path } => {
            out.put_i32(4);
            out.put_string(path);
        }
        Txn::Multi(txns) => {
            out.put_i32(5);
            out.put_len(txns.len());
            for t in txns {
                encode_txn(out, t);
            }
        }
        Txn::CreateSession {
            session_id,
            timeout_ms,
        } => {
            out.put_i32(6);
            out.put_i64(*session_id);
            out.put_i32(*timeout_ms);
        }
        Txn::CloseSession { session_id } => {
            out.put_i32(7);
            out.put_i64(*session_id);
        }
        Txn::Error(code) => {
            out.put_i32(8);
            out.put_i32(code.code());
        }
    }
}

/// Reads a transaction.
pub fn decode_txn(r: &mut Reader<'_>) -> Result<Txn, DecodeError> {
    let tag = r.read_i32()?;
    Ok(match tag {
        0 => Txn::Create(CreateTxn {
            path: r.read_string()?,
            data: r.read_buffer()?,
            acl: get_acl(r)?,
            ephemeral_owner: r.read_i64()?,
            parent_cversion: r.read_i32()?,
            reply: if r.read_bool()? {
                CreateReply::PathAndStat
            } else {
                CreateReply::Path
            },
        }),
        1 => Txn::Delete {
            path: r.read_string()?,
        },
        2 => Txn::SetData {
            path: r.read_string()?,
            data: r.read_buffer()?,
            version: r.read_i32()?,
        },
        3 => Txn::SetAcl {
            path: r.read_string()?,
            acl: get_acl(r)?,
            version: r.read_i32()?,
        },
        4 => Txn::Check {
            path: r.read_string()?,
        },
        5 => Txn::Multi(r.read_vec(4, decode_txn)?),
        6 => Txn::CreateSession {
            session_id: r.read_i64()?,
            timeout_ms: r.read_i32()?,
        },
        7 => Txn::CloseSession {
            session_id: r.read_i64()?,
        },
        8 => Txn::Error(ErrorCode::try_from(r.read_i32()?)?),
        value => {
            return Err(DecodeError::UnknownValue {
                kind: "txn type",
                value,
            })
        }
    })
}

/// Appends an origin.
pub fn encode_origin(out: &mut Vec<u8>, o: &Origin) {
    out.put_i32(i32::from(o.server));
    out.put_i64(i64::try_from(o.conn).unwrap_or(i64::MAX));
    out.put_i32(o.xid);
    out.put_i64(o.session_id);
}

/// Reads an origin.
pub fn decode_origin(r: &mut Reader<'_>) -> Result<Origin, DecodeError> {
    let server = r.read_i32()?;
    let conn = r.read_i64()?;
    Ok(Origin {
        server: u8::try_from(server).map_err(|_| DecodeError::UnknownValue {
            kind: "server id",
            value: server,
        })?,
        conn: u64::try_from(conn).unwrap_or(0),
        xid: r.read_i32()?,
        session_id: r.read_i64()?,
    })
}

/// Appends an entry.
pub fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    out.put_i64(e.header.session_id);
    out.put_i32(e.header.cxid);
    out.put_i64(e.header.zxid);
    out.put_i64(e.header.time);
    encode_txn(out, &e.txn);
    out.put_bool(e.origin.is_some());
    if let Some(o) = &e.origin {
        encode_origin(out, o);
    }
}

/// Reads an entry.
pub fn decode_entry(r: &mut Reader<'_>) -> Result<Entry, DecodeError> {
    let header = TxnHeader {
        session_id: r.read_i64()?,
        cxid: r.read_i32()?,
        zxid: r.read_i64()?,
        time: r.read_i64()?,
    };
    let txn = decode_txn(r)?;
    let origin = if r.read_bool()? {
        Some(decode_origin(r)?)
    } else {
        None
    };
    Ok(Entry {
        header,
        txn,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let e = Entry {
            header: TxnHeader {
                session_id: 5,
                cxid: 3,
                zxid: (2 << 32) | 7,
                time: 99,
            },
            txn: Txn::Multi(vec![
                Txn::Create(CreateTxn {
                    path: "/a".into(),
                    data: b"x".to_vec(),
                    acl: Acl::open_unsafe(),
                    ephemeral_owner: 5,
                    parent_cversion: 1,
                    reply: CreateReply::PathAndStat,
                }),
                Txn::SetData {
                    path: "/a".into(),
                    data: vec![],
                    version: 1,
                },
                Txn::Error(ErrorCode::NoNode),
            ]),
            origin: Some(Origin {
                server: 2,
                conn: 4,
                xid: 3,
                session_id: 5,
            }),
        };
        let mut out = Vec::new();
        encode_entry(&mut out, &e);
        let mut r = Reader::new(&out);
        assert_eq!(decode_entry(&mut r), Ok(e));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn crash_drops_the_unsynced_tail() {
        let mut s = Store::default();
        let entry = |zxid| Entry {
            header: TxnHeader {
                session_id: 0,
                cxid: 0,
                zxid,
                time: 0,
            },
            txn: Txn::Check { path: "/".into() },
            origin: None,
        };
        s.append(entry(1), true);
        s.append(entry(2), false);
        assert_eq!(s.after(1).map(<[Entry]>::len), Some(1));
        s.crash();
        assert_eq!(s.last_zxid(), 1);
        assert!(s.after(2).is_none());
    }
}
