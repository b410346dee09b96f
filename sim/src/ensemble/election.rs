//! Leader election. A looking server listens for [`EnsembleConfig::election_wait`], then
//! votes for the best history among the looking servers it hears: the highest
//! `(current epoch, last zxid)`, the server id breaking ties ([`vote`]). If that is itself
//! and a quorum is looking, it becomes the prospective leader of a new epoch, one above every
//! epoch it has heard of, and asks the others to follow (`NewEpoch`). Each server promises an
//! epoch at most once (its `accepted_epoch`), so two prospective leaders of one epoch cannot
//! both gather a quorum; a prospective leader that learns of a fresher history from a
//! follower, or gets no quorum within the election timeout, looks again.
//!
//! A looking server also joins an established leader that invites it, whatever epoch it
//! promised before (the leader already has a quorum).
//!
//! [`EnsembleConfig::election_wait`]: super::EnsembleConfig::election_wait

use tokio::time::Instant;

use super::node::{FollowerState, LeaderState, Node, State};
use super::peer::{Msg, Role};

/// A vote's order: a better history wins, then the higher id.
pub(super) fn vote(current_epoch: u32, last_zxid: i64, id: u8) -> (u32, i64, u8) {
    (current_epoch, last_zxid, id)
}

impl Node {
    pub(super) fn election_tick(&mut self) {
        let State::Looking { since } = self.state else {
            return;
        };
        if since.elapsed() < self.config.election_wait {
            return;
        }
        let fresh = self.fresh_statuses();
        if fresh
            .iter()
            .any(|(_, s)| s.role == Role::Leading && s.established)
        {
            // An established leader is around: wait for its invitation.
            return;
        }
        let (accepted, current, last) =
            self.with_store(|s| (s.accepted_epoch, s.current_epoch, s.last_zxid()));
        let mine = vote(current, last, self.id);
        let looking: Vec<_> = fresh
            .iter()
            .filter(|(_, s)| s.role == Role::Looking)
            .map(|(id, s)| vote(s.current_epoch, s.last_zxid, *id))
            .collect();
        if looking.len() + 1 < self.config.quorum() || looking.iter().any(|v| *v > mine) {
            return;
        }
        let epoch = fresh
            .iter()
            .map(|(_, s)| s.accepted_epoch.max(s.current_epoch))
            .chain([accepted, current])
            .max()
            .unwrap_or(0)
            + 1;
        self.with_store(|s| s.accepted_epoch = epoch);
        let leader = LeaderState {
            epoch,
            established: false,
            since: Instant::now(),
            synced: Default::default(),
            sync_point: Default::default(),
            links: Default::default(),
            acked_sync: Default::default(),
            acks: Default::default(),
            joined: Default::default(),
            counter: 0,
            prep: Default::default(),
            pending_syncs: Vec::new(),
            owners: Default::default(),
        };
        self.become_state(
            State::Leading(Box::new(leader)),
            &format!("best of {} looking", looking.len() + 1),
        );
        self.broadcast(&Msg::NewEpoch {
            epoch,
            established: false,
        });
    }

    /// An invitation to follow `peer` in `epoch`.
    pub(super) fn on_new_epoch(&mut self, peer: u8, epoch: u32, established: bool) {
        let accepted = self.with_store(|s| s.accepted_epoch);
        let join = match &self.state {
            State::Looking { .. } => epoch > accepted || established,
            // A prospective leader yields to a newer epoch.
            State::Leading(l) => !l.established && epoch > l.epoch,
            State::Following(_) => false,
        };
        if !join {
            return;
        }
        let (current, last, base) = self.with_store(|s| {
            s.accepted_epoch = s.accepted_epoch.max(epoch);
            (s.current_epoch, s.last_zxid(), s.base())
        });
        self.become_state(
            State::Following(FollowerState {
                leader: peer,
                // Invitations arrive on the current link (0, never a link's id, otherwise).
                link: self.link_id(peer).unwrap_or(0),
                epoch,
                synced: false,
                since: Instant::now(),
            }),
            "invited",
        );
        self.send(
            peer,
            &Msg::AckEpoch {
                epoch,
                current_epoch: current,
                last_zxid: last,
                snapshot_zxid: base,
            },
        );
    }
}
