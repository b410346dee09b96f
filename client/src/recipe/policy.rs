//! When a lock or leadership held in one session stops being trustworthy: the
//! [`ConnectionPolicy`] a recipe is given (Curator's `ConnectionStateErrorPolicy`), and the
//! [`TrustWatch`] that applies it to the client's state transitions. Every recipe that holds
//! something (locks, latch, selector, semaphore, partitioner) decides trust here and nowhere
//! else.

use crate::client::Client;
use crate::error::Result;
use crate::state::State;
use crate::SessionInfo;

/// When a held lock (or leadership) stops being trusted.
///
/// Whatever the policy, a recipe only *acquires* (or is elected) while connected to a
/// read-write server ([`State::Connected`]): a read-only server is cut off from the quorum,
/// which may be expiring the session meanwhile (Curator does not elect on `READ_ONLY`
/// either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionPolicy {
    /// As soon as the connection is suspended, or lands on a read-only server (Curator's
    /// standard policy): the session may expire while the client cannot hear about it.
    #[default]
    SuspendedIsLost,
    /// Only when the session is lost (Curator's session-connection policy).
    OnlySessionLoss,
}

impl ConnectionPolicy {
    /// Whether `state` means a held lock must be considered lost.
    pub fn is_lost(self, state: State) -> bool {
        match self {
            // A read-only server is partitioned from the quorum: no better than suspended.
            ConnectionPolicy::SuspendedIsLost => state != State::Connected,
            ConnectionPolicy::OnlySessionLoss => state.is_terminal(),
        }
    }
}

/// Waits until the client is connected to a read-write server (a read-only one cannot vouch
/// for the session: the quorum may be expiring it); fails once the client is finished.
pub(crate) async fn wait_read_write(client: &Client) -> Result<()> {
    loop {
        client.wait_connected().await?;
        if client.state() == State::Connected {
            return Ok(());
        }
        client
            .wait_for_state(|s| s != State::ConnectedReadOnly)
            .await;
    }
}

/// Waits until the session snapshot satisfies `pred` (or the client is gone).
pub(crate) async fn session_until(
    mut info: tokio::sync::watch::Receiver<SessionInfo>,
    pred: impl Fn(&SessionInfo) -> bool,
) {
    let _ = info.wait_for(|i| pred(i)).await.map(|_| ());
}

/// Tells when a lock or leadership held in one session stops being trustworthy under a
/// [`ConnectionPolicy`]: from the latest session snapshot *and* from every state transition
/// since it was made, so a brief Suspended-then-Connected blip is not missed.
pub(crate) struct TrustWatch {
    transitions: tokio::sync::broadcast::Receiver<State>,
    info: tokio::sync::watch::Receiver<SessionInfo>,
    session_id: i64,
    policy: ConnectionPolicy,
}

impl TrustWatch {
    /// Starts watching now, for what is held in `session_id`.
    pub(crate) fn new(client: &Client, session_id: i64, policy: ConnectionPolicy) -> Self {
        TrustWatch {
            transitions: client.state_changes(),
            info: client.session_info(),
            session_id,
            policy,
        }
    }

    /// Whether what is held can no longer be trusted, from the latest session snapshot.
    pub(crate) fn is_lost_now(&self) -> bool {
        let info = self.info.borrow();
        self.policy.is_lost(info.state) || info.session_id != self.session_id
    }

    /// Resolves once what is held can no longer be trusted.
    pub(crate) async fn lost(&mut self) {
        let (policy, session_id) = (self.policy, self.session_id);
        let snapshot = session_until(self.info.clone(), move |i| {
            policy.is_lost(i.state) || i.session_id != session_id
        });
        let transitions = &mut self.transitions;
        let blip = async {
            loop {
                match transitions.recv().await {
                    Ok(state) if policy.is_lost(state) => return,
                    Ok(_) => {}
                    // Lagged: transitions were missed, assume the worst. Closed: client gone.
                    Err(_) => return,
                }
            }
        };
        tokio::select! {
            biased;
            () = snapshot => {}
            () = blip => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_is_trusted_only_under_only_session_loss() {
        let strict = ConnectionPolicy::default();
        assert!(!strict.is_lost(State::Connected));
        assert!(strict.is_lost(State::ConnectedReadOnly));
        assert!(strict.is_lost(State::Suspended));
        let lenient = ConnectionPolicy::OnlySessionLoss;
        assert!(!lenient.is_lost(State::ConnectedReadOnly));
        assert!(!lenient.is_lost(State::Suspended));
        assert!(lenient.is_lost(State::Lost));
    }
}
