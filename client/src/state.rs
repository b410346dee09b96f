//! Connection states, as a client and its recipes see them.

/// Where the client's session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Looking for a server for the first time.
    Connecting,
    /// Connected to a read-write server; the session is alive.
    Connected,
    /// Connected to a server in read-only mode: reads work, writes fail with
    /// [`Error::NotReadOnly`](crate::Error::NotReadOnly).
    ConnectedReadOnly,
    /// The connection dropped; the session may still live on the servers. Requests wait for a
    /// reconnect. Locks and leadership must be treated as lost (the session may expire while
    /// the client cannot hear about it).
    Suspended,
    /// The session expired (told by a server on reconnect, or the client's own timer passed the
    /// negotiated timeout while suspended). Told by a server, every ephemeral node of the
    /// session is gone. Declared on the client's own timer, the servers may not have expired
    /// the session yet (a new leader restarts every session's clock, for one): its ephemeral
    /// nodes can outlive this state by up to about a session timeout. Nothing of the session
    /// can be trusted either way; recipes leave such nodes to ZooKeeper unless told otherwise
    /// ([`Builder::delete_stale_recipe_nodes`](crate::Builder::delete_stale_recipe_nodes)).
    Lost,
    /// The server refused the session's credentials.
    AuthFailed,
    /// The client was closed.
    Closed,
}

impl State {
    /// Connected, read-write or read-only.
    pub fn is_connected(self) -> bool {
        matches!(self, State::Connected | State::ConnectedReadOnly)
    }

    /// The session is over: nothing will succeed on this client any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Lost | State::AuthFailed | State::Closed)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::ConnectedReadOnly => "connected (read-only)",
            State::Suspended => "suspended",
            State::Lost => "lost",
            State::AuthFailed => "auth failed",
            State::Closed => "closed",
        };
        f.write_str(s)
    }
}
