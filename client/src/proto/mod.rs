//! ZooKeeper's wire protocol: jute records, numbered constants, multi framing and the frame
//! codec, as spoken by ZooKeeper 3.5 to 3.9.
//!
//! Every record encodes and decodes (the client needs one half, the simulated server the
//! other). Decoding is total: malformed input yields a [`DecodeError`], never a panic, and never
//! allocates more than the input holds.

#[macro_use]
pub mod jute;
mod consts;
mod frame;
mod multi;
mod records;
mod request;
mod response;

pub use consts::*;
pub use frame::{encode_frame, FrameDecoder, DEFAULT_MAX_FRAME};
pub use jute::{Reader, Record, Writer};
pub use multi::{MultiHeader, MultiOp, MultiRequest, MultiResponse, MultiResult};
pub use records::*;
pub use request::Request;
pub use response::Response;

/// Why bytes from the wire could not be read as the record expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the record did.
    #[error("truncated record: needed {needed} more bytes, {remaining} left")]
    Truncated {
        /// Bytes the next item needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix was negative (other than -1, jute's null).
    #[error("negative length {length}")]
    NegativeLength {
        /// The length read.
        length: i32,
    },
    /// A frame's length prefix exceeds the configured maximum.
    #[error("frame of {length} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The length announced by the frame.
        length: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A record was followed by bytes that belong to nothing.
    #[error("{count} trailing bytes after the record")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// A number that ZooKeeper does not define for this kind of constant.
    #[error("unknown {kind} {value}")]
    UnknownValue {
        /// Which constant (opcode, error code, create mode...).
        kind: &'static str,
        /// The number read.
        value: i32,
    },
    /// A string was not valid UTF-8.
    #[error("invalid UTF-8 in string at byte {offset}")]
    InvalidUtf8 {
        /// Offset of the string's length prefix within the record.
        offset: usize,
    },
    /// The bytes were well formed but make no sense where they stand.
    #[error("malformed {what}")]
    Malformed {
        /// What was wrong.
        what: &'static str,
    },
}

#[cfg(test)]
mod tests;
