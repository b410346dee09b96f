//! zkit: a pure-Rust async ZooKeeper client.
//!
//! ```no_run
//! # async fn f() -> zkit::Result<()> {
//! use zkit::{Client, CreateMode};
//! let client = Client::connect("127.0.0.1:2181").await?;
//! client.create("/hello", b"world", CreateMode::Ephemeral).await?;
//! let (data, stat, watcher) = client.get_data_watch("/hello").await?;
//! assert_eq!(data, b"world");
//! client.set_data("/hello", b"again", Some(stat.version)).await?;
//! println!("{:?}", watcher.await.event_type); // NodeDataChanged
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! - [`Client`]: every operation; [`Builder`] for options; [`State`] for connection states.
//! - [`proto`]: ZooKeeper's jute wire protocol, every record both ways, and the frame codec.
//! - [`path`]: path validation exactly as ZooKeeper's `PathUtils`.
//! - [`connector`]: the network seam (tokio TCP here, turmoil in the simulation).
//! - `tls`: TLS connections (feature `tls`, on by default), `Builder::tls`.
//! - SASL DIGEST-MD5 authentication: `Builder::sasl_digest`.
//! - [`retry`]: retry policies.
//! - [`recipe`]: coordination recipes: locks, semaphores, leader election, membership,
//!   barriers, configuration watches, counters, queues, leases, partitioning, tree cache.
#![warn(missing_docs)]

mod client;
mod config;
pub mod connector;
mod error;
mod op;
pub mod path;
#[cfg(feature = "planted-bugs")]
#[doc(hidden)]
pub mod planted;
#[cfg(not(feature = "planted-bugs"))]
mod planted;
pub mod proto;
pub mod recipe;
pub mod retry;
mod sasl;
mod session;
mod state;
#[cfg(feature = "tls")]
pub mod tls;
mod watch;

pub use client::{Client, CreateOptions};
pub use config::{Builder, ConnectString, DEFAULT_PORT};
pub use connector::{Connector, TcpConnector};
pub use error::{Error, Result};
pub use op::{Op, OpResult, ReadOp, ReadResult};
pub use proto::{Acl, AddWatchMode, CreateMode, EventType, KeeperState, Perms, Stat};
pub use retry::RetryPolicy;
pub use session::SessionInfo;
pub use state::State;
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsConnector, TlsError};
pub use watch::{PersistentWatcher, WatchedEvent, Watcher};
