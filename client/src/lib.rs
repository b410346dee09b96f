//! zkit: a pure-Rust async ZooKeeper client.
//!
//! - [`proto`]: ZooKeeper's jute wire protocol, every record both ways, and the frame codec.
//! - [`path`]: path validation exactly as ZooKeeper's `PathUtils`.
#![warn(missing_docs)]

pub mod path;
pub mod proto;
