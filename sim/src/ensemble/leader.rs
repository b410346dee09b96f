//! The leader. Prospective: every follower that promises its epoch is synced (a diff of
//! the entries after the follower's last zxid when the follower's log is a prefix of the
//! leader's, the whole log otherwise) and once a quorum has logged its sync the leader is
//! established: its whole history is committed, its epoch becomes current, and it serves.
//!
//! Established: every write is validated against the tree as all proposals so far leave it,
//! stamped with zxid `(epoch << 32) | counter`, logged, proposed to the synced followers and
//! committed once a quorum (the leader included) has logged it; commits go out in zxid
//! order. A `sync` is answered once everything proposed before it is committed. The leader
//! steps down when it no longer hears a quorum.

use tokio::time::Instant;
use zkit::proto::Request;

use super::log::Entry;
use super::node::{LeaderState, Node, State};
use super::peer::{Msg, Role};
use crate::server::acl::AuthInfo;
use crate::server::prep::{prepare, prepare_delete_container, PrepContext};
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
        let (snapshot, entries, commit, point) = self.with_store(|s| {
            let commit = if established { s.committed } else { 0 };
            match s.after(last_zxid) {
                Some(tail) if last_zxid <= s.last_zxid() => {
                    (false, tail.to_vec(), commit, s.last_zxid())
                }
                _ => (true, s.log.clone(), commit, s.last_zxid()),
            }
        });
        if let Some(l) = self.leading(epoch) {
            l.synced.insert(peer);
            l.sync_point.insert(peer, point);
            l.acks.insert(peer, 0);
            l.acked_sync.remove(&peer);
            l.joined.insert(peer, Instant::now());
        }
        self.send(
            peer,
            &Msg::Sync {
                epoch,
                snapshot,
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
            w.checker.leader(epoch, self.id);
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
        let wall = {
            let now = self.now_ms();
            self.shared.lock().wall(now)
        };
        let (committed, last) = self.with_store(|s| (s.committed, s.last_zxid()));
        let State::Leading(l) = &mut self.state else {
            return;
        };
        let o = sub.origin;
        let txn = match sub.kind {
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
            SubmitKind::CreateSession { timeout_ms } => Txn::CreateSession {
                session_id: o.session_id,
                timeout_ms,
            },
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
            if l.since.elapsed() > self.config.election_timeout {
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
        let heard = l.acked_sync.iter().filter(|f| self.hears(**f)).count();
        if heard + 1 < quorum && l.since.elapsed() > self.config.peer_timeout {
            self.look("lost the quorum");
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
