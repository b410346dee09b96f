//! The follower: syncs its history with the leader (`DIFF`: the entries after its last
//! zxid appended; `TRUNC`: the entries the leader does not have dropped first; `SNAP`: its
//! whole state replaced by the leader's snapshot), logs and acks proposals, applies commits
//! in zxid order, forwards its clients' writes, reports its sessions' activity, and looks for
//! another leader when this one goes silent (closing its clients' connections: it no longer
//! sees a quorum).
//!
//! A sync holds for one link: when the link to the leader ends or is replaced, the follower
//! looks again (`Node::check_session_link`), since proposals sent meanwhile may be lost. As
//! a second line, a proposal that is not the successor of its last logged zxid
//! ([`follows`]) is refused, never logged over a hole and acked.

use super::check::tree_digest;
use super::lock;
use super::log::Entry;
use super::node::{Node, State};
use super::peer::{Msg, SyncKind};

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
        kind: SyncKind,
        entries: Vec<Entry>,
        commit: i64,
    ) {
        if !self.following(peer, epoch) {
            return;
        }
        let name = kind.name();
        let detail = match &kind {
            SyncKind::Diff => String::new(),
            SyncKind::Trunc { to } => format!(" to 0x{to:x}"),
            SyncKind::Snap(snap) => format!(" at 0x{:x}", snap.zxid),
        };
        let applied = self.applied;
        let (done, installed, dropped) = self.with_store(|s| {
            let before = s.last_zxid();
            let (done, installed) = match kind {
                SyncKind::Diff => (true, None),
                SyncKind::Trunc { to } => (s.truncate(to), None),
                SyncKind::Snap(snap) => {
                    let tree = snap.tree.clone();
                    s.install(*snap, Vec::new());
                    (true, Some(tree))
                }
            };
            let dropped = before > s.last_zxid() && installed.is_none();
            if done {
                for e in entries {
                    if e.zxid() > s.last_zxid() {
                        s.append(e, true);
                    }
                }
                s.current_epoch = epoch;
                s.fsync();
            }
            (done, installed, dropped)
        });
        if !done {
            // Only a leader that ignored our snapshot's zxid asks this.
            self.look(&format!(
                "cannot truncate below its snapshot ({name}{detail})"
            ));
            return;
        }
        if let Some(tree) = installed {
            let digest = tree_digest(&tree);
            let zxid = tree.last_zxid();
            self.reset_tree(tree);
            lock(&self.world).checker.applied(self.id, zxid, digest);
        } else if applied > 0 && !self.with_store(|s| s.holds(applied)) {
            // What this server applied is not in the leader's history (only a fault makes
            // it so: applied entries were committed): rebuild from the snapshot.
            self.event(format!(
                "{name} drops applied 0x{applied:x}: rebuilding from the snapshot"
            ));
            let tree = self.with_store(|s| {
                s.committed = s.base();
                s.replay(s.base())
            });
            self.reset_tree(tree);
        }
        if let State::Following(f) = &mut self.state {
            f.synced = true;
        }
        self.event(format!(
            "synced with zk{peer} by {name}{detail}{} (commit 0x{commit:x})",
            if dropped { ", log truncated" } else { "" }
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
        let last = self.with_store(|s| s.last_zxid());
        if !follows(last, zxid) {
            // A proposal went missing (or came twice): logging this one would leave a hole
            // that the ack would hide from the leader. Sync again instead.
            self.look(&format!(
                "proposal 0x{zxid:x} does not follow its last zxid 0x{last:x}"
            ));
            return;
        }
        self.with_store(|s| s.append(entry, durable));
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

    pub(super) fn on_revalidated(&mut self, peer: u8, conn: u64, session_id: i64, valid: bool) {
        if let State::Following(f) = &self.state {
            if f.leader == peer && f.synced {
                let now = self.now_ms();
                self.shared.lock().revalidated(conn, session_id, valid, now);
            }
        }
    }

    pub(super) fn follower_tick(&mut self) {
        let State::Following(f) = &self.state else {
            return;
        };
        let leader = f.leader;
        // `Learner`'s socket timeout: `initLimit` ticks while syncing, `syncLimit` after.
        let silent_for = if f.synced {
            self.config.sync_timeout()
        } else {
            self.config.init_timeout()
        };
        if !self.heard_within(leader, silent_for) {
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
        if !f.synced && f.since.elapsed() > self.config.init_timeout() {
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

/// Whether a proposal of `zxid` is the next one after a log ending at `last`: the next
/// counter of the same epoch, or the first of a later epoch (a leader numbers its proposals
/// 1, 2, ... and a sync leaves the follower at the leader's last zxid).
pub(super) fn follows(last: i64, zxid: i64) -> bool {
    let (epoch, counter) = (zxid >> 32, zxid & 0xffff_ffff);
    if epoch == last >> 32 {
        zxid == last + 1
    } else {
        epoch > last >> 32 && counter == 1
    }
}

#[cfg(test)]
mod tests {
    use super::follows;

    const E1: i64 = 1 << 32;
    const E2: i64 = 2 << 32;

    #[test]
    fn a_proposal_follows_only_the_last_zxid() {
        assert!(follows(0, E1 | 1));
        assert!(follows(E1 | 4, E1 | 5));
        assert!(follows(E1 | 4, E2 | 1));
        assert!(!follows(E1 | 4, E1 | 6), "a hole");
        assert!(!follows(E1 | 4, E1 | 4), "a duplicate");
        assert!(!follows(E1 | 4, E2 | 2), "a hole at the start of an epoch");
        assert!(!follows(E2 | 1, E1 | 5), "an older epoch");
    }
}
