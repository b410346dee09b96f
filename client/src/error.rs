//! The client's one error type: ZooKeeper's result codes (with the path they concern) and the
//! client's own failures (connection loss, expiry, bad input, protocol violations).

use crate::path::InvalidPath;
use crate::proto::{DecodeError, ErrorCode};

/// What went wrong with an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The node does not exist.
    #[error("no node {path}")]
    NoNode {
        /// The node concerned.
        path: String,
    },
    /// The node already exists.
    #[error("node {path} already exists")]
    NodeExists {
        /// The node concerned.
        path: String,
    },
    /// The expected version did not match.
    #[error("bad version for {path}")]
    BadVersion {
        /// The node concerned.
        path: String,
    },
    /// The node has children and cannot be deleted.
    #[error("node {path} is not empty")]
    NotEmpty {
        /// The node concerned.
        path: String,
    },
    /// An ephemeral node cannot have children.
    #[error("cannot create children of ephemeral node under {path}")]
    NoChildrenForEphemerals {
        /// The node concerned.
        path: String,
    },
    /// The session lacks the permission.
    #[error("not authorised for {path}")]
    NoAuth {
        /// The node concerned.
        path: String,
    },
    /// The ACL given is invalid.
    #[error("invalid ACL for {path}")]
    InvalidAcl {
        /// The node concerned.
        path: String,
    },
    /// The arguments were refused by the server.
    #[error("bad arguments for {path}")]
    BadArguments {
        /// The node concerned.
        path: String,
    },
    /// No such watch is registered.
    #[error("no watcher on {path}")]
    NoWatcher {
        /// The node concerned.
        path: String,
    },
    /// A write was sent to a read-only server.
    #[error("server is read-only, cannot change {path}")]
    NotReadOnly {
        /// The node concerned.
        path: String,
    },
    /// Any other result code ZooKeeper returned.
    #[error("{} ({}) for {path}", code.message(), code.code())]
    Server {
        /// The code.
        code: ErrorCode,
        /// The node concerned (empty if none).
        path: String,
    },
    /// A transaction failed: nothing was applied.
    #[error("multi failed at op {index} ({path}): {}", code.message())]
    MultiFailed {
        /// Index of the op that failed.
        index: usize,
        /// Its code.
        code: ErrorCode,
        /// Its path.
        path: String,
    },
    /// The connection dropped with the request in flight: it may or may not have applied.
    #[error("connection lost")]
    ConnectionLoss,
    /// The session expired; nothing further can be done with it.
    #[error("session expired")]
    SessionExpired,
    /// The server refused the session's credentials.
    #[error("authentication failed")]
    AuthFailed,
    /// An operation or connection attempt took too long.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The path is not valid.
    #[error(transparent)]
    InvalidPath(#[from] InvalidPath),
    /// A frame from the server exceeded the configured maximum.
    #[error("frame of {length} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The announced length.
        length: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The server sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A bad argument given to the client itself (connect string, option).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The client was closed.
    #[error("client closed")]
    Closed,
    /// TLS could not be set up: a certificate or key file is missing or garbled.
    #[error("TLS: {0}")]
    Tls(String),
    /// No server could be reached, and the connector knows why (a refused TLS handshake, say).
    #[error("could not connect: {0}")]
    ConnectFailed(String),
}

impl Error {
    /// The error for result `code` on `path`.
    pub fn from_code(code: ErrorCode, path: &str) -> Error {
        let path = path.to_owned();
        match code {
            ErrorCode::NoNode => Error::NoNode { path },
            ErrorCode::NodeExists => Error::NodeExists { path },
            ErrorCode::BadVersion => Error::BadVersion { path },
            ErrorCode::NotEmpty => Error::NotEmpty { path },
            ErrorCode::NoChildrenForEphemerals => Error::NoChildrenForEphemerals { path },
            ErrorCode::NoAuth => Error::NoAuth { path },
            ErrorCode::InvalidAcl => Error::InvalidAcl { path },
            ErrorCode::BadArguments => Error::BadArguments { path },
            ErrorCode::NoWatcher => Error::NoWatcher { path },
            ErrorCode::NotReadOnly => Error::NotReadOnly { path },
            ErrorCode::ConnectionLoss => Error::ConnectionLoss,
            ErrorCode::SessionExpired => Error::SessionExpired,
            ErrorCode::AuthFailed => Error::AuthFailed,
            code => Error::Server { code, path },
        }
    }

    /// ZooKeeper's code for this error, where it has one.
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            Error::NoNode { .. } => ErrorCode::NoNode,
            Error::NodeExists { .. } => ErrorCode::NodeExists,
            Error::BadVersion { .. } => ErrorCode::BadVersion,
            Error::NotEmpty { .. } => ErrorCode::NotEmpty,
            Error::NoChildrenForEphemerals { .. } => ErrorCode::NoChildrenForEphemerals,
            Error::NoAuth { .. } => ErrorCode::NoAuth,
            Error::InvalidAcl { .. } => ErrorCode::InvalidAcl,
            Error::BadArguments { .. } => ErrorCode::BadArguments,
            Error::NoWatcher { .. } => ErrorCode::NoWatcher,
            Error::NotReadOnly { .. } => ErrorCode::NotReadOnly,
            Error::Server { code, .. } | Error::MultiFailed { code, .. } => *code,
            Error::ConnectionLoss => ErrorCode::ConnectionLoss,
            Error::SessionExpired => ErrorCode::SessionExpired,
            Error::AuthFailed => ErrorCode::AuthFailed,
            _ => return None,
        })
    }

    /// Whether retrying the same request may succeed: the connection dropped (the session
    /// lives) or the server asked to slow down. Whether it is *safe* to retry is the caller's
    /// call: a write that failed with [`Error::ConnectionLoss`] may have applied.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLoss
                | Error::Timeout(_)
                | Error::Server {
                    code: ErrorCode::OperationTimeout
                        | ErrorCode::ThrottledOp
                        | ErrorCode::RequestTimeout
                        | ErrorCode::SessionMoved,
                    ..
                }
        )
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Error {
        match e {
            DecodeError::FrameTooLarge { length, max } => Error::FrameTooLarge { length, max },
            other => Error::Protocol(other.to_string()),
        }
    }
}

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
