//! The leader. Prospective: every follower that promises its epoch is synced
//! ([`plan_sync`]: `DIFF`, `TRUNC` or `SNAP`) and once a quorum has logged its sync the
//! leader is established: its whole history is committed, its epoch becomes current, and it
//! serves.
//!
//! Established: every write is validated against the tree as all proposals so far leave it,
//! stamped with zxid `(epoch << 32) | counter`, logged, proposed to the synced followers and
//! committed once a quorum (the leader included) has logged it; commits go out in zxid
//! order. A `sync` is answered once everything proposed before it is committed. The leader
//! steps down when it no longer hears a quorum. A follower whose link is lost or replaced
//! leaves the synced set (proposals may have been lost on the way) and is synced again.

use tokio::time::{Duration, Instant};
use zkit::proto::{ErrorCode, Request};

use super::log::{Entry, Store};
use super::node::{LeaderState, Node, State};
use super::peer::{Msg, Role, SyncKind};
use super::snapshot::Snapshot;
use crate::server::acl::AuthInfo;
use crate::server::prep::{prepare, prepare_delete_container, PrepContext};
use crate::server::tree::DataTree;
use crate::server::txn::{Txn, TxnHeader};
use crate::server::{Origin, Submission, SubmitKind};

impl Node {
    fn leading(&mut self, epoch: u32) -> Option<&mut LeaderState> {
        match &mut self.state {
            State::Leading(l) if l.epoch == epoch => Some(l),
            _ => None,
        }
    }

    pub(super) fn on_ack_epoch(
        &mut self,
        peer: u8,
        epoch: u32,
        current_epoch: u32,
        last_zxid: i64,
        snapshot_zxid: i64,
    ) {
        let (my_current, my_last) = self.with_store(|s| (s.current_epoch, s.last_zxid()));
        let Some(l) = self.leading(epoch) else {
            return;
        };
        if !l.established && (current_epoch, last_zxid) > (my_current, my_last) {
            self.look(&format!("zk{peer} has a fresher history"));
            return;
        }
        let established = l.established;
        let (kind, entries, commit, point) = self.with_store(|s| {
            let commit = if established { s.committed } else { 0 };
            let (kind, entries) = plan_sync(s, last_zxid, snapshot_zxid);
            (kind, entries, commit, s.last_zxid())
        });
        let link = self.link_id(peer).unwrap_or(0);
        if let Some(l) = self.leading(epoch) {
            l.synced.insert(peer);
            l.links.insert(peer, link);
            l.sync_point.insert(peer, point);
            l.acks.insert(peer, 0);
            l.acked_sync.remove(&peer);
            l.joined.insert(peer, Instant::now());
        }
        let detail = match &kind {
            SyncKind::Diff => format!("after 0x{last_zxid:x}"),
            SyncKind::Trunc { to } => format!("from 0x{last_zxid:x} to 0x{to:x}"),
            SyncKind::Snap(snap) => format!("at 0x{:x} (zk{peer} at 0x{last_zxid:x})", snap.zxid),
        };
        self.event(format!(
            "sends {} to zk{peer} {detail} + {} entries",
            kind.name().to_uppercase(),
            entries.len()
        ));
        self.send(
            peer,
            &Msg::Sync {
                epoch,
                kind,
                entries,
                commit,
            },
        );
    }

    pub(super) fn on_ack_sync(&mut self, peer: u8, epoch: u32) {
        let quorum = self.config.quorum();
        let Some(l) = self.leading(epoch) else {
            return;
        };
        if !l.synced.contains(&peer) {
            return;
        }
        l.acked_sync.insert(peer);
        let point = l.sync_point.get(&peer).copied().unwrap_or(0);
        let ack = l.acks.entry(peer).or_insert(0);
        *ack = (*ack).max(point);
        if l.established {
            let commit = self.with_store(|s| s.committed);
            self.send(
                peer,
                &Msg::Commit {
                    epoch,
                    zxid: commit,
                },
            );
            self.maybe_commit();
        } else if l.acked_sync.len() + 1 >= quorum {
            self.establish();
        }
    }

    fn establish(&mut self) {
        let State::Leading(l) = &mut self.state else {
            return;
        };
        l.established = true;
        let epoch = l.epoch;
        let (last, newly) = self.with_store(|s| {
            s.current_epoch = epoch;
            let newly: Vec<Entry> = s
                .log
                .iter()
                .filter(|e| e.zxid() > s.committed)
                .cloned()
                .collect();
            (s.last_zxid(), newly)
        });
        {
            let mut w = super::lock(&self.world);
            w.checker.leader(epoch, self.id, last);
            for e in &newly {
                w.checker.committed(e);
            }
        }
        self.apply_to(last);
        let prep = self.shared.lock().tree.clone();
        let followers: Vec<u8> = match &mut self.state {
            State::Leading(l) => {
                l.prep = prep;
                l.since = Instant::now();
                l.acked_sync.iter().copied().collect()
            }
            _ => Vec::new(),
        };
        for f in followers {
            self.send(f, &Msg::Commit { epoch, zxid: last });
        }
        let state = std::mem::replace(
            &mut self.state,
            State::Looking {
                since: Instant::now(),
            },
        );
        self.become_state(state, "quorum synced");
    }

    /// The session with follower `peer` ended with its link (see
    /// `Node::check_session_link`): what was sent to it since its sync may be lost, so it
    /// neither receives proposals nor counts towards a quorum until it has synced again.
    pub(super) fn follower_link_lost(&mut self, peer: u8) {
        let State::Leading(l) = &mut self.state else {
            return;
        };
        if !l.synced.remove(&peer) {
            return;
        }
        l.links.remove(&peer);
        l.acked_sync.remove(&peer);
        l.acks.remove(&peer);
        l.sync_point.remove(&peer);
        self.event(format!("zk{peer} must sync again: its link was lost"));
    }

    pub(super) fn on_ack(&mut self, peer: u8, epoch: u32, zxid: i64) {
        let Some(l) = self.leading(epoch) else {
            return;
        };
        if let Some(a) = l.acks.get_mut(&peer) {
            *a = (*a).max(zxid);
        }
        if l.established {
            self.maybe_commit();
        }
    }

    /// Commits up to the highest zxid a quorum has logged.
    fn maybe_commit(&mut self) {
        let quorum = self.config.quorum();
        let (own, committed) = self.with_store(|s| (s.last_zxid(), s.committed));
        let State::Leading(l) = &self.state else {
            return;
        };
        let mut acks: Vec<i64> = l
            .acked_sync
            .iter()
            .filter_map(|f| l.acks.get(f).copied())
            .collect();
        acks.push(own);
        acks.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&z) = acks.get(quorum - 1) else {
            return;
        };
        if z <= committed {
            return;
        }
        let epoch = l.epoch;
        let followers: Vec<u8> = l.synced.iter().copied().collect();
        let newly: Vec<Entry> = self.with_store(|s| {
            s.log
                .iter()
                .filter(|e| e.zxid() > committed && e.zxid() <= z)
                .cloned()
                .collect()
        });
        {
            let mut w = super::lock(&self.world);
            for e in &newly {
                w.checker.committed(e);
            }
        }
        self.apply_to(z);
        for f in followers {
            self.send(f, &Msg::Commit { epoch, zxid: z });
        }
        let ready: Vec<Origin> = match &mut self.state {
            State::Leading(l) => {
                let (ready, waiting) = std::mem::take(&mut l.pending_syncs)
                    .into_iter()
                    .partition(|(upto, _)| *upto <= z);
                l.pending_syncs = waiting;
                ready.into_iter().map(|(_, o)| o).collect()
            }
            _ => Vec::new(),
        };
        for o in ready {
            self.sync_reached(o);
        }
    }

    fn sync_reached(&mut self, o: Origin) {
        if o.server == self.id {
            let now = self.now_ms();
            self.shared.lock().sync_done(o.conn, o.xid, now);
        } else {
            self.send(
                o.server,
                &Msg::SyncDone {
                    conn: o.conn,
                    xid: o.xid,
                },
            );
        }
    }

    /// Answers a `REVALIDATE`: to this member's own core, or to the follower that asked.
    fn revalidated(&mut self, o: Origin, valid: bool) {
        if o.server == self.id {
            let now = self.now_ms();
            self.shared
                .lock()
                .revalidated(o.conn, o.session_id, valid, now);
        } else {
            self.send(
                o.server,
                &Msg::Revalidated {
                    conn: o.conn,
                    session_id: o.session_id,
                    valid,
                },
            );
        }
    }

    pub(super) fn on_forward(&mut self, _peer: u8, sub: Submission) {
        if matches!(&self.state, State::Leading(l) if l.established) {
            self.lead_submission(sub);
        }
    }

    pub(super) fn on_touch(&mut self, _peer: u8, ids: &[i64]) {
        if matches!(&self.state, State::Leading(l) if l.established) {
            let now = self.now_ms();
            self.shared.lock().touch_sessions(ids, now);
        }
    }

    /// Orders one submission (established leader only).
    pub(super) fn lead_submission(&mut self, sub: Submission) {
        let extended_types = self.config.server.extended_types;
        let now = self.now_ms();
        let wall = self.shared.lock().wall(now);
        let (committed, last) = self.with_store(|s| (s.committed, s.last_zxid()));
        let State::Leading(l) = &mut self.state else {
            return;
        };
        let o = sub.origin;
        // A client's request forwarded by a member that no longer owns its session (the
        // client has moved to another member since) fails with SESSIONMOVED, as ZooKeeper's
        // PrepRequestProcessor answers it: it must never apply after what the client sends on
        // its new connection. Only requests that make a transaction are refused: a `sync`
        // from the old owner is checked too, but its SessionMovedException only sets the
        // leader's copy of the request aside and `ProposalRequestProcessor` still calls
        // `Leader.processSync`, so the old member answers it; and `closeSession` is not
        // checked at all (the expirer sends it without being the owner), so it applies.
        let moved = o.conn != 0
            && matches!(sub.kind, SubmitKind::Request { .. })
            && l.owners
                .get(&o.session_id)
                .is_some_and(|&owner| owner != o.server);
        if moved {
            tracing::debug!(
                session = format_args!("0x{:x}", o.session_id),
                from = o.server,
                "session moved: a request from its old member refused"
            );
        }
        let txn = match sub.kind {
            SubmitKind::Revalidate { timeout_ms } => {
                let valid = l.prep.has_session(o.session_id)
                    && self
                        .shared
                        .lock()
                        .revalidate_session(o.session_id, timeout_ms, now);
                if valid {
                    l.owners.insert(o.session_id, o.server);
                }
                self.revalidated(o, valid);
                return;
            }
            SubmitKind::Request { .. } if moved => Txn::Error(ErrorCode::SessionMoved),
            SubmitKind::Sync => {
                if committed >= last {
                    self.sync_reached(o);
                } else {
                    l.pending_syncs.push((last, o));
                }
                return;
            }
            SubmitKind::Request { frame, auth } => {
                let Ok((_, request)) = Request::decode_frame(&frame) else {
                    return;
                };
                let auth = AuthInfo::from_ids(auth);
                let ctx = PrepContext {
                    session_id: o.session_id,
                    auth: &auth,
                    extended_types,
                };
                prepare(&l.prep, &ctx, &request)
            }
            SubmitKind::CreateSession { timeout_ms } => {
                l.owners.insert(o.session_id, o.server);
                Txn::CreateSession {
                    session_id: o.session_id,
                    timeout_ms,
                }
            }
            SubmitKind::CloseSession => {
                if !l.prep.has_session(o.session_id) {
                    return;
                }
                Txn::CloseSession {
                    session_id: o.session_id,
                }
            }
            SubmitKind::DeleteContainer { path } => prepare_delete_container(&l.prep, &path),
        };
        l.counter += 1;
        let zxid = (i64::from(l.epoch) << 32) | i64::from(l.counter);
        let header = TxnHeader {
            session_id: o.session_id,
            cxid: o.xid,
            zxid,
            time: wall,
        };
        l.prep.apply(&header, &txn);
        let epoch = l.epoch;
        let followers: Vec<u8> = l.synced.iter().copied().collect();
        let entry = Entry {
            header,
            txn,
            origin: Some(o),
        };
        let msg = Msg::Propose {
            epoch,
            entry: entry.clone(),
        };
        self.with_store(|s| s.append(entry, true));
        for f in followers {
            self.send(f, &msg);
        }
        self.maybe_commit();
    }

    pub(super) fn leader_tick(&mut self) {
        let quorum = self.config.quorum();
        let fresh = self.fresh_statuses();
        let State::Leading(l) = &self.state else {
            return;
        };
        let epoch = l.epoch;
        if !l.established {
            if l.since.elapsed() > self.config.init_timeout() {
                self.look("no quorum for the new epoch");
                return;
            }
            // Invite again whoever has not promised yet (links come and go).
            let invite: Vec<u8> = fresh
                .iter()
                .filter(|(id, _)| !l.synced.contains(id))
                .map(|(id, _)| *id)
                .collect();
            for p in invite {
                self.send(
                    p,
                    &Msg::NewEpoch {
                        epoch,
                        established: false,
                    },
                );
            }
            return;
        }
        let synced = l
            .synced
            .iter()
            .filter(|f| self.still_synced(l, **f))
            .count();
        if synced + 1 < quorum {
            self.look("not sufficient followers synced");
            return;
        }
        // A follower that went looking (restarted, or lost us) is invited again.
        let looking: Vec<u8> = fresh
            .iter()
            .filter(|(id, s)| {
                s.role == Role::Looking && l.joined.get(id).is_none_or(|at| s.at > *at)
            })
            .map(|(id, _)| *id)
            .collect();
        if let State::Leading(l) = &mut self.state {
            for p in &looking {
                l.synced.remove(p);
                l.links.remove(p);
                l.acked_sync.remove(p);
            }
        }
        for p in looking {
            self.send(
                p,
                &Msg::NewEpoch {
                    epoch,
                    established: true,
                },
            );
        }
        let _ = self.shared.lock().take_touched();
    }
}

/// The number of whole ticks of `tick` in `d`.
fn ticks(d: Duration, tick: Duration) -> u128 {
    d.as_nanos() / tick.as_nanos().max(1)
}

impl Node {
    /// Whether follower `f` still counts towards the quorum, as `LearnerHandler.synced`
    /// decides: the leader counts ticks from its establishment, and a follower is synced
    /// until the tick `sync_limit` after the one it was last heard in (`init_limit +
    /// sync_limit` after the one it joined in while it has not logged its sync yet). The
    /// answer changes only at tick boundaries, as the leader checks once per tick.
    fn still_synced(&self, l: &LeaderState, f: u8) -> bool {
        let tick = self.config.tick();
        let tick_of = |at: Instant| ticks(at.saturating_duration_since(l.since), tick);
        let now = ticks(l.since.elapsed(), tick);
        let deadline = if l.acked_sync.contains(&f) {
            self.heard_at(f)
                .map(|at| tick_of(at) + u128::from(self.config.sync_limit))
        } else {
            l.joined.get(&f).map(|at| {
                tick_of(*at)
                    + u128::from(self.config.init_limit)
                    + u128::from(self.config.sync_limit)
            })
        };
        deadline.is_some_and(|d| now <= d)
    }
}

/// How to bring a follower whose last zxid is `last` and whose snapshot is at `base` in line
/// with the leader's store `s`, and the entries to append after that:
/// - `DIFF` when `last` is in the leader's history (its snapshot's zxid or a logged one);
/// - `TRUNC` to the leader's last zxid at or below `last` when the follower logged entries
///   the leader does not have (a proposal of an older epoch that never committed), provided
///   that point is not below the follower's own snapshot;
/// - `SNAP` otherwise: the follower is behind the leader's snapshot (the log it needs was
///   compacted), or cannot truncate far enough.
pub(super) fn plan_sync(s: &Store, last: i64, base: i64) -> (SyncKind, Vec<Entry>) {
    if last >= s.base() {
        if let Some(tail) = s.after(last) {
            return (SyncKind::Diff, tail.to_vec());
        }
        let to = s
            .log
            .iter()
            .rev()
            .map(Entry::zxid)
            .find(|z| *z <= last)
            .unwrap_or_else(|| s.base());
        if to >= base {
            let tail = s.after(to).map(<[Entry]>::to_vec).unwrap_or_default();
            return (SyncKind::Trunc { to }, tail);
        }
    }
    let snapshot = s
        .snapshot
        .clone()
        .unwrap_or_else(|| Snapshot::of(DataTree::new()));
    (SyncKind::Snap(Box::new(snapshot)), s.log.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::txn::TxnHeader;

    fn entry(zxid: i64) -> Entry {
        Entry {
            header: TxnHeader {
                session_id: 0,
                cxid: 0,
                zxid,
                time: 0,
            },
            txn: Txn::Check { path: "/".into() },
            origin: None,
        }
    }

    fn zxids(entries: &[Entry]) -> Vec<i64> {
        entries.iter().map(Entry::zxid).collect()
    }

    const E1: i64 = 1 << 32;
    const E2: i64 = 2 << 32;
    const E3: i64 = 3 << 32;

    fn leader_store() -> Store {
        let mut s = Store::default();
        for z in [E1 | 1, E1 | 2, E1 | 3, E3 | 1, E3 | 2] {
            s.append(entry(z), true);
        }
        s.committed = E3 | 2;
        s
    }

    #[test]
    fn a_follower_in_the_history_gets_a_diff() {
        let s = leader_store();
        let (kind, tail) = plan_sync(&s, E1 | 3, 0);
        assert_eq!(kind, SyncKind::Diff);
        assert_eq!(zxids(&tail), vec![E3 | 1, E3 | 2]);
        let (kind, tail) = plan_sync(&s, 0, 0);
        assert_eq!(kind, SyncKind::Diff);
        assert_eq!(tail.len(), 5);
    }

    #[test]
    fn a_follower_with_entries_of_an_older_epoch_is_truncated() {
        let s = leader_store();
        // The follower logged (2, 1) and (2, 2), proposed by a leader of epoch 2 that no
        // quorum followed.
        let (kind, tail) = plan_sync(&s, E2 | 2, 0);
        assert_eq!(kind, SyncKind::Trunc { to: E1 | 3 });
        assert_eq!(zxids(&tail), vec![E3 | 1, E3 | 2]);
        // Ahead of the leader in its own epoch: truncated to the leader's last.
        let (kind, tail) = plan_sync(&s, E3 | 9, 0);
        assert_eq!(kind, SyncKind::Trunc { to: E3 | 2 });
        assert!(tail.is_empty());
    }

    #[test]
    fn a_follower_behind_the_snapshot_gets_the_snapshot() {
        let mut s = leader_store();
        assert_eq!(s.compact(3), Some(E3 | 2));
        assert!(s.log.is_empty());
        let (kind, tail) = plan_sync(&s, E1 | 2, 0);
        assert!(matches!(kind, SyncKind::Snap(ref snap) if snap.zxid == E3 | 2));
        assert!(tail.is_empty());
        // At the snapshot itself: nothing to send.
        assert_eq!(plan_sync(&s, E3 | 2, 0), (SyncKind::Diff, vec![]));
    }

    #[test]
    fn a_follower_that_cannot_truncate_below_its_snapshot_gets_the_snapshot() {
        let s = leader_store();
        let (kind, _) = plan_sync(&s, E2 | 2, E2 | 1);
        assert!(matches!(kind, SyncKind::Snap(_)));
    }
}
