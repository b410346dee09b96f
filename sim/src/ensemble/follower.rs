//! The follower: syncs its log with the leader (a diff appended, or a snapshot replacing
//! it), logs and acks proposals, applies commits in zxid order, forwards its clients'
//! writes, reports its sessions' activity, and looks for another leader when this one goes
//! silent (closing its clients' connections: it no longer sees a quorum).

use super::log::Entry;
use super::node::{Node, State};
use super::peer::Msg;
use crate::server::tree::DataTree;

impl Node {
    fn following(&self, peer: u8, epoch: u32) -> bool {
        matches!(&self.state, State::Following(f) if f.leader == peer && f.epoch == epoch)
    }

    fn synced_with(&self, peer: u8, epoch: u32) -> bool {
        matches!(&self.state, State::Following(f) if f.leader == peer && f.epoch == epoch && f.synced)
    }

    pub(super) fn on_sync(
        &mut self,
        peer: u8,
        epoch: u32,
        snapshot: bool,
        entries: Vec<Entry>,
        commit: i64,
    ) {
        if !self.following(peer, epoch) {
            return;
        }
        let applied = self.applied;
        let keeps_applied = self.with_store(|s| {
            if snapshot {
                s.replace(entries);
            } else {
                for e in entries {
                    if e.zxid() > s.last_zxid() {
                        s.append(e, true);
                    }
                }
            }
            s.current_epoch = epoch;
            s.fsync();
            applied == 0 || s.index_of(applied).is_some()
        });
        if !keeps_applied {
            // What this server applied is not in the leader's history: start over.
            self.event(format!("snapshot drops applied 0x{applied:x}: rebuilding"));
            self.with_store(|s| s.committed = 0);
            self.reset_tree(DataTree::new());
        }
        if let State::Following(f) = &mut self.state {
            f.synced = true;
        }
        self.event(format!(
            "synced with zk{peer} by {} (commit 0x{commit:x})",
            if snapshot { "snapshot" } else { "diff" }
        ));
        self.send(peer, &Msg::AckSync { epoch });
        if commit > 0 {
            self.on_commit(peer, epoch, commit);
        }
    }

    pub(super) fn on_propose(&mut self, peer: u8, epoch: u32, entry: Entry) {
        if !self.synced_with(peer, epoch) {
            return;
        }
        let durable = !self.config.ack_before_fsync;
        let zxid = entry.zxid();
        self.with_store(|s| {
            if zxid > s.last_zxid() {
                s.append(entry, durable);
            }
        });
        self.send(peer, &Msg::Ack { epoch, zxid });
    }

    pub(super) fn on_commit(&mut self, peer: u8, epoch: u32, zxid: i64) {
        if !self.synced_with(peer, epoch) {
            return;
        }
        self.apply_to(zxid);
        if !self.serving {
            self.set_serving(true, false);
        }
    }

    pub(super) fn on_sync_done(&mut self, peer: u8, conn: u64, xid: i32) {
        if let State::Following(f) = &self.state {
            if f.leader == peer && f.synced {
                let now = self.now_ms();
                self.shared.lock().sync_done(conn, xid, now);
            }
        }
    }

    pub(super) fn follower_tick(&mut self) {
        let State::Following(f) = &self.state else {
            return;
        };
        let leader = f.leader;
        if !self.hears(leader) {
            self.look("leader silent");
            return;
        }
        let since = f.since;
        let stepped_down = self
            .statuses
            .get(&leader)
            .is_some_and(|s| s.at > since && s.role != super::peer::Role::Leading);
        if stepped_down {
            self.look("leader stepped down");
            return;
        }
        if !f.synced && f.since.elapsed() > self.config.election_timeout {
            self.look("no sync from leader");
            return;
        }
        if self.config.ack_before_fsync {
            // The lazy fsync of the fault option.
            self.with_store(|s| s.fsync());
        }
        if self.serving {
            let touched = self.shared.lock().take_touched();
            if !touched.is_empty() {
                self.send(leader, &Msg::Touch(touched));
            }
        }
    }
}
