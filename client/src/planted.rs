//! Planted bugs (feature `planted-bugs`, test-only, off by default): one line of the session
//! engine made wrong on request, so that the simulation harness can prove it catches the bug
//! (`sim/tests/sensitivity.rs`); one, [`PlantedBug::CancelledDeleteLosesNode`], is in the
//! recipes instead. Nothing here is active unless a client is built with
//! [`Builder::planted_bug`](crate::Builder::planted_bug); without the feature the method does
//! not exist and every check below is a constant `false`.

/// A deliberately broken line of the session engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "planted-bugs"), allow(dead_code))]
pub enum PlantedBug {
    /// Watches are not restored after a reconnect (no SetWatches sent): they stay
    /// registered in the client and never fire.
    WatchesNotRestored,
    /// The connect request carries `last_zxid_seen` 0 instead of the last zxid seen: a
    /// server behind what the client has read accepts it.
    NoLastZxidSeen,
    /// The client's own expiry timer runs three times the negotiated session timeout: it
    /// declares the session `Lost` long after the ensemble expired it.
    LateExpiryTimer,
    /// A dropped connection does not publish `Suspended` (the client stays `Connected`
    /// until it reconnects or its session ends).
    SuspendedNotPublished,
    /// A recipe's owned node (a held lock's, a latch's) is given up as its delete is sent,
    /// not once the delete is confirmed: a release or close cancelled half-way (its future
    /// dropped, say by a timeout) loses the node instead of handing it to the background
    /// delete, and the node stays while the session lives.
    CancelledDeleteLosesNode,
}
