//! Real mode: scenarios against a real Apache ZooKeeper ensemble on loopback.
//!
//! - [`proxy`]: an in-process TCP fault proxy (partition one or both ways, hold then
//!   deliver, latency, reset) controlled at run time through a [`proxy::ProxyHandle`];
//! - [`ensemble`]: a 1-, 3- or 5-member ZooKeeper whose members reach each other, and
//!   clients reach them, only through such proxies, with crash, restart and `srvr`;
//! - [`support`]: which scenarios real mode can run (partition, split, heal, crash and
//!   restart faults), and why the others are refused.
//!
//! The processes are started by `scripts/zk` (the same launcher the project's real-server
//! tests use), so real mode needs Java and ZooKeeper 3.8 (`scripts/zk install`).

pub mod ensemble;
pub mod proxy;
pub mod support;
