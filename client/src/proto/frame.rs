//! The frame codec: every message on a ZooKeeper connection is a big-endian `i32` length
//! followed by that many bytes.
//!
//! The decoder rejects negative lengths and lengths above a configurable maximum (the client's
//! `jute.maxbuffer`, [`DEFAULT_MAX_FRAME`]) before buffering anything, so a hostile peer cannot
//! make it allocate more than the maximum.

use bytes::{Buf, BytesMut};

use super::DecodeError;

/// ZooKeeper's client-side default maximum frame length (`jute.maxbuffer`, 0xfffff bytes).
pub const DEFAULT_MAX_FRAME: usize = 0xfffff;

/// Appends one frame to `out`: a length prefix, then whatever `body` writes.
pub fn encode_frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out);
    let len = out.len() - start - 4;
    // A body over i32::MAX cannot be announced; such a frame is refused by every peer's
    // maximum long before, so saturating is only a guard.
    let len = i32::try_from(len).unwrap_or(i32::MAX);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Splits a byte stream into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder { max }
    }

    /// The largest frame body accepted.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Checks a length prefix: its body length, or why it cannot be accepted.
    pub fn check_length(&self, prefix: [u8; 4]) -> Result<usize, DecodeError> {
        let length = i32::from_be_bytes(prefix);
        let len = usize::try_from(length).map_err(|_| DecodeError::NegativeLength { length })?;
        if len > self.max {
            return Err(DecodeError::FrameTooLarge {
                length: len,
                max: self.max,
            });
        }
        Ok(len)
    }

    /// Takes one whole frame body off the front of `buf`, `None` if more bytes are needed.
    ///
    /// On error the stream is unusable (its framing is lost) and should be closed. When a frame
    /// is incomplete, room for the rest is reserved in `buf` (at most the maximum).
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<BytesMut>, DecodeError> {
        let Some(prefix) = buf.get(..4) else {
            return Ok(None);
        };
        let mut len_bytes = [0u8; 4];
        len_bytes.copy_from_slice(prefix);
        let len = self.check_length(len_bytes)?;
        if buf.len() < 4 + len {
            buf.reserve(4 + len - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(len)))
    }
}
