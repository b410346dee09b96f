//! The register: one znode's data and data version, as the `register` role uses it and the
//! [`linearizable`](crate::check::linearizable) checker replays it. What a client asked
//! ([`RegisterOp`]), what it was told ([`RegisterResult`]), and the sequential model both
//! are judged against ([`step`]): a read returns the value and version; a
//! write sets the value and bumps the version; a compare-and-set applies iff the version
//! matches; a create makes the node at version 0 iff it is absent; a `multi` of a version
//! check and a `set_data` ([`RegisterOp::Multi`]) is atomic, so the model treats it as the
//! compare-and-set it amounts to.

use std::fmt;

/// An operation a register client invoked on its znode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOp {
    /// `create` with the initial value (the role creates the node if it is missing).
    Create {
        /// The initial value.
        value: String,
    },
    /// `get_data`; `synced` if a `sync` went out first (a linearizable read), else a
    /// local read (ZooKeeper promises it only sequential consistency: it may be stale, but
    /// never older than what the same session saw before).
    Read {
        /// Whether a `sync` preceded the read.
        synced: bool,
    },
    /// `set_data` with version -1 (an unconditional write of a unique value).
    Write {
        /// The value written.
        value: String,
    },
    /// `set_data` with an expected version (a compare-and-set).
    Cas {
        /// The version the node must have.
        expected: i32,
        /// The value written if it has.
        value: String,
    },
    /// A `multi` of `check(path, expected)` and `set_data(path, value, -1)`: atomic, so it
    /// applies iff the node is at `expected` (a compare-and-set made of two operations; its
    /// result is the `set_data`'s version, or the failed op's error).
    Multi {
        /// The version the check requires.
        expected: i32,
        /// The value the `set_data` writes.
        value: String,
    },
}

impl fmt::Display for RegisterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterOp::Create { value } => write!(f, "create {value:?}"),
            RegisterOp::Read { synced: true } => write!(f, "sync+read"),
            RegisterOp::Read { synced: false } => write!(f, "local read"),
            RegisterOp::Write { value } => write!(f, "write {value:?}"),
            RegisterOp::Cas { expected, value } => {
                write!(f, "cas version {expected} -> {value:?}")
            }
            RegisterOp::Multi { expected, value } => {
                write!(f, "multi [check version {expected}, set {value:?}]")
            }
        }
    }
}

/// A definite failure: the operation did not apply, and the server said why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RegisterError {
    /// The version did not match (a compare-and-set did not apply).
    BadVersion,
    /// The node does not exist.
    NoNode,
    /// The node already exists (a create did not apply).
    NodeExists,
}

/// What a register operation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterResult {
    /// A read returned the value and version (`None`: no node).
    Read(Option<(String, i32)>),
    /// A create, write or compare-and-set applied: the node's version after it.
    Written {
        /// The node's data version after the operation.
        version: i32,
    },
    /// The operation definitely did not apply.
    Failed(RegisterError),
    /// No verdict (connection loss, timeout, session expiry): the operation may or may not
    /// have taken effect, at any instant after its call (Jepsen's `:info`). The error.
    Indeterminate(String),
}

impl fmt::Display for RegisterResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterResult::Read(Some((value, version))) => {
                write!(f, "{value:?} version {version}")
            }
            RegisterResult::Read(None) => write!(f, "no node"),
            RegisterResult::Written { version } => write!(f, "ok, version {version}"),
            RegisterResult::Failed(e) => write!(f, "failed: {e:?}"),
            RegisterResult::Indeterminate(e) => write!(f, "indeterminate: {e}"),
        }
    }
}

impl RegisterResult {
    /// The result of a zkit error: a definite failure where the server gave a verdict that
    /// the operation did not apply (a failed `multi` applied none of its operations), else
    /// indeterminate.
    pub fn from_error(e: &zkit::Error) -> RegisterResult {
        match e {
            zkit::Error::BadVersion { .. } => RegisterResult::Failed(RegisterError::BadVersion),
            zkit::Error::NoNode { .. } => RegisterResult::Failed(RegisterError::NoNode),
            zkit::Error::NodeExists { .. } => RegisterResult::Failed(RegisterError::NodeExists),
            zkit::Error::MultiFailed { code, .. } => match code {
                zkit::proto::ErrorCode::BadVersion => {
                    RegisterResult::Failed(RegisterError::BadVersion)
                }
                zkit::proto::ErrorCode::NoNode => RegisterResult::Failed(RegisterError::NoNode),
                zkit::proto::ErrorCode::NodeExists => {
                    RegisterResult::Failed(RegisterError::NodeExists)
                }
                _ => RegisterResult::Indeterminate(e.to_string()),
            },
            other => RegisterResult::Indeterminate(other.to_string()),
        }
    }

    /// Whether the operation has no verdict.
    pub fn is_indeterminate(&self) -> bool {
        matches!(self, RegisterResult::Indeterminate(_))
    }
}

/// The sequential register's state, with values interned as numbers (see
/// [`step`]): `None` while the node does not exist.
pub type RegisterState = Option<(u32, i32)>;

/// An operation with its value interned (the checker's compact form of [`RegisterOp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Create with this value.
    Create(u32),
    /// Read.
    Read,
    /// Unconditional write of this value.
    Write(u32),
    /// Compare-and-set: expected version, value.
    Cas(i32, u32),
}

/// A result with its value interned (`None` in place of a result: indeterminate, anything
/// goes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A read's value and version (`None`: no node).
    Read(RegisterState),
    /// Applied: the version after it.
    Written(i32),
    /// Did not apply, for this reason.
    Failed(RegisterError),
}

/// The sequential model: applies `input` to `state`; returns the next state if the model
/// could have returned `output` (`None`: indeterminate, any output), else `None`.
pub fn step(state: RegisterState, input: Input, output: Option<Output>) -> Option<RegisterState> {
    let (next, out) = match (input, state) {
        (Input::Create(v), None) => (Some((v, 0)), Output::Written(0)),
        (Input::Create(_), Some(_)) => (state, Output::Failed(RegisterError::NodeExists)),
        (Input::Read, _) => (state, Output::Read(state)),
        (Input::Write(_) | Input::Cas(..), None) => (state, Output::Failed(RegisterError::NoNode)),
        (Input::Write(v), Some((_, version))) => {
            (Some((v, version + 1)), Output::Written(version + 1))
        }
        (Input::Cas(expected, v), Some((_, version))) if expected == version => {
            (Some((v, version + 1)), Output::Written(version + 1))
        }
        (Input::Cas(..), Some(_)) => (state, Output::Failed(RegisterError::BadVersion)),
    };
    match output {
        None => Some(next),
        Some(o) if o == out => Some(next),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_applies_a_cas_iff_the_version_matches() {
        let s = Some((1, 3));
        assert_eq!(
            step(s, Input::Cas(3, 2), Some(Output::Written(4))),
            Some(Some((2, 4)))
        );
        assert_eq!(step(s, Input::Cas(2, 2), Some(Output::Written(3))), None);
        assert_eq!(
            step(
                s,
                Input::Cas(2, 2),
                Some(Output::Failed(RegisterError::BadVersion))
            ),
            Some(s)
        );
        assert_eq!(step(s, Input::Cas(3, 2), None), Some(Some((2, 4))));
        assert_eq!(step(None, Input::Create(5), None), Some(Some((5, 0))));
        assert_eq!(step(s, Input::Read, Some(Output::Read(Some((1, 2))))), None);
    }
}
