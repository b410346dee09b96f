//! The register client: one znode (`path`) used as a read/write register. The client
//! creates it if it is missing (initial value `init`), then loops, a random `hold` apart,
//! doing a random operation on it: a `sync` then `get_data` (a linearizable read), a plain
//! `get_data` (a local read, sequentially consistent only), a `set_data` with version -1 of a
//! unique value `c{client}-{incarnation}-{n}`, a compare-and-set (`set_data` with the
//! version it last saw, now and then an older one), or the same compare-and-set made of a
//! `multi` (`check` of the version, then `set_data`). Every operation is recorded as it is
//! called ([`Event::RegisterCall`]) and as it returns ([`Event::RegisterReturn`]): the value
//! and version read, the version written, a definite failure (`BadVersion`, `NoNode`,
//! `NodeExists`: it did not apply), or indeterminate (connection loss, timeout, session
//! expiry: it may or may not have applied; never retried). The
//! [`linearizable`](crate::check::linearizable) and [`monotonic`](crate::check::monotonic)
//! checkers judge the records.
//!
//! Every read [`run`] makes leaves a one-shot data watch (`get_data_watch`): the role
//! records each watch it holds ([`Event::RegisterWatchSet`], right after the read that set
//! it returned) and each that fired ([`Event::RegisterWatchFired`]), polling them just
//! before it records any operation's return, so a notification that reached the client
//! before a reply is recorded before that reply. The [`watches`](crate::check::watches)
//! checker judges them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use zkit::{Client, CreateMode, Error, Op, OpResult, Watcher};

use super::ClientSpec;
use crate::history::Event;
use crate::register::{RegisterError, RegisterOp, RegisterResult};

/// The value the role creates the register with.
pub const INITIAL: &str = "init";

/// The id of operation `n` of `incarnation` (unique per client across incarnations).
pub fn op_id(incarnation: u32, n: u32) -> u64 {
    (u64::from(incarnation) << 32) | u64::from(n)
}

/// Records the call of `op`, runs `body`, records what it returned (in the session the
/// client is in then), and returns that.
pub async fn recorded(
    spec: &ClientSpec,
    zk: &Client,
    op_id: u64,
    op: RegisterOp,
    body: impl Future<Output = RegisterResult>,
) -> RegisterResult {
    let mut none = Watches::default();
    recorded_watched(spec, zk, op_id, op, &mut none, async { (body.await, None) }).await
}

/// The one-shot data watches a register client holds, each with the id of the read that set
/// it, in the order they were set.
#[derive(Debug, Default)]
pub struct Watches {
    held: Vec<(u64, Watcher)>,
}

impl Watches {
    /// Records every held watch that has fired ([`Event::RegisterWatchFired`], in the order
    /// the watches were set) and drops it. Never waits: a notification the client has
    /// dispatched is already in its watcher.
    pub fn poll_fired(&mut self, spec: &ClientSpec, session: i64) {
        let mut cx = Context::from_waker(Waker::noop());
        self.held
            .retain_mut(|(read, watcher)| match Pin::new(watcher).poll(&mut cx) {
                Poll::Ready(event) => {
                    spec.history.record(Event::RegisterWatchFired {
                        client: spec.client,
                        read: *read,
                        session,
                        event: event.event_type,
                    });
                    false
                }
                Poll::Pending => true,
            });
    }

    /// How many watches are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no watch is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// [`recorded`] for a `body` that may leave a watch: just before the return is recorded,
/// every watch in `watches` that has fired is recorded ([`Watches::poll_fired`]); a watch
/// the body left is recorded after the return ([`Event::RegisterWatchSet`]) and joins
/// `watches`.
pub async fn recorded_watched(
    spec: &ClientSpec,
    zk: &Client,
    op_id: u64,
    op: RegisterOp,
    watches: &mut Watches,
    body: impl Future<Output = (RegisterResult, Option<Watcher>)>,
) -> RegisterResult {
    let client = spec.client;
    spec.history
        .record(Event::RegisterCall { client, op_id, op });
    let (result, watcher) = body.await;
    // The session the reply came in (before any pause: the client may move on after it).
    let session = zk.session_id();
    spec.history.pause_point(client).await;
    // Notifications that came before the reply (and during the pause: recording one early
    // can only hide a late one, never invent one).
    watches.poll_fired(spec, session);
    spec.history.record(Event::RegisterReturn {
        client,
        op_id,
        session,
        result: result.clone(),
    });
    if let Some(w) = watcher {
        spec.history.record(Event::RegisterWatchSet {
            client,
            read: op_id,
            session,
        });
        watches.held.push((op_id, w));
    }
    result
}

/// [`apply`], with a read leaving a one-shot data watch (`get_data_watch`), returned with
/// the result if the read returned data.
pub async fn apply_watched(
    zk: &Client,
    path: &str,
    op: &RegisterOp,
) -> (RegisterResult, Option<Watcher>) {
    let RegisterOp::Read { synced } = op else {
        return (apply(zk, path, op).await, None);
    };
    let out = async {
        if *synced {
            zk.sync(path).await?;
        }
        zk.get_data_watch(path).await
    }
    .await;
    match out {
        Ok((data, stat, watcher)) => (
            RegisterResult::Read(Some((
                String::from_utf8_lossy(&data).into_owned(),
                stat.version,
            ))),
            Some(watcher),
        ),
        Err(Error::NoNode { .. }) => (RegisterResult::Read(None), None),
        Err(e) => (RegisterResult::from_error(&e), None),
    }
}

/// Runs `op` on the znode at `path` (correctly: a synced read sends `sync` first).
pub async fn apply(zk: &Client, path: &str, op: &RegisterOp) -> RegisterResult {
    let out = match op {
        RegisterOp::Create { value } => zk
            .create(path, value.as_bytes(), CreateMode::Persistent)
            .await
            .map(|(_, stat)| RegisterResult::Written {
                version: stat.version,
            }),
        RegisterOp::Read { synced } => async {
            if *synced {
                zk.sync(path).await?;
            }
            zk.get_data(path).await
        }
        .await
        .map(|(data, stat)| {
            RegisterResult::Read(Some((
                String::from_utf8_lossy(&data).into_owned(),
                stat.version,
            )))
        }),
        RegisterOp::Write { value } => {
            zk.set_data(path, value.as_bytes(), None)
                .await
                .map(|stat| RegisterResult::Written {
                    version: stat.version,
                })
        }
        RegisterOp::Cas { expected, value } => zk
            .set_data(path, value.as_bytes(), Some(*expected))
            .await
            .map(|stat| RegisterResult::Written {
                version: stat.version,
            }),
        RegisterOp::Multi { expected, value } => zk
            .multi(&[
                Op::check(path, Some(*expected)),
                Op::set_data(path, value.as_bytes(), None),
            ])
            .await
            .and_then(|results| match results.get(1) {
                Some(OpResult::SetData { stat }) => Ok(RegisterResult::Written {
                    version: stat.version,
                }),
                other => Err(Error::Protocol(format!(
                    "multi [check, set_data] answered {other:?} for its set_data"
                ))),
            }),
    };
    match out {
        Ok(r) => r,
        Err(Error::NoNode { .. }) if matches!(op, RegisterOp::Read { .. }) => {
            RegisterResult::Read(None)
        }
        Err(e) => RegisterResult::from_error(&e),
    }
}

/// Draws the next operation: a synced read, a local read, a write of `value`, or a
/// compare-and-set to `value` expecting `last_version` (one time in four an older one),
/// either a `set_data` with a version or a `multi` of a check and a `set_data`.
pub fn choose(rng: &mut impl Rng, last_version: i32, value: String) -> RegisterOp {
    match rng.random_range(0..100) {
        0..30 => RegisterOp::Read { synced: true },
        30..45 => RegisterOp::Read { synced: false },
        45..70 => RegisterOp::Write { value },
        n => {
            let expected = if rng.random_range(0..4) == 0 {
                (last_version - rng.random_range(1..3)).max(0)
            } else {
                last_version
            };
            if n < 88 {
                RegisterOp::Cas { expected, value }
            } else {
                RegisterOp::Multi { expected, value }
            }
        }
    }
}

/// Waits out an indeterminate failure: until connected again after a connection loss, else
/// a moment.
pub async fn recover(zk: &Client, result: &RegisterResult) {
    if let RegisterResult::Indeterminate(_) = result {
        if zk.wait_connected().await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The version `result` tells the client the node has (if it tells one).
pub fn version_of(result: &RegisterResult) -> Option<i32> {
    match result {
        RegisterResult::Read(Some((_, v))) | RegisterResult::Written { version: v } => Some(*v),
        _ => None,
    }
}

/// The start of a register client: [`super::start`], the register's parent made, and the
/// register created unless someone has (recorded operations, until a definite answer).
/// Returns the random stream, the client and the number of operations made so far.
pub async fn setup(spec: &ClientSpec, incarnation: u32) -> (ChaCha8Rng, Client, u32) {
    setup_configured(spec, incarnation, |builder| builder).await
}

/// [`setup`], connecting with [`super::connect_configured`] (a test planting a bug in the
/// client).
pub async fn setup_configured(
    spec: &ClientSpec,
    incarnation: u32,
    configure: impl Fn(zkit::Builder) -> zkit::Builder,
) -> (ChaCha8Rng, Client, u32) {
    let who = spec.host();
    let path = spec.workload.path.as_str();
    let (rng, zk) = super::start_configured(spec, incarnation, configure).await;
    if let Some((parent, _)) = path.rsplit_once('/').filter(|(p, _)| !p.is_empty()) {
        while let Err(e) = zk.ensure_path(parent).await {
            spec.history.note(&who, format!("ensure_path failed: {e}"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut n = 0u32;
    loop {
        let op = RegisterOp::Create {
            value: INITIAL.to_owned(),
        };
        let id = op_id(incarnation, n);
        n += 1;
        let result = recorded(spec, &zk, id, op.clone(), apply(&zk, path, &op)).await;
        match result {
            RegisterResult::Written { .. } | RegisterResult::Failed(RegisterError::NodeExists) => {
                break
            }
            other => recover(&zk, &other).await,
        }
    }
    (rng, zk, n)
}

/// Runs the register client forever.
pub async fn run(spec: &ClientSpec, incarnation: u32) -> Result<(), Box<dyn std::error::Error>> {
    run_configured(spec, incarnation, |builder| builder).await
}

/// [`run`], connecting with [`super::connect_configured`] (a test planting a bug in the
/// client).
pub async fn run_configured(
    spec: &ClientSpec,
    incarnation: u32,
    configure: impl Fn(zkit::Builder) -> zkit::Builder,
) -> Result<(), Box<dyn std::error::Error>> {
    let path = spec.workload.path.as_str();
    let (lo, hi) = spec.workload.hold;
    let (mut rng, zk, mut n) = setup_configured(spec, incarnation, configure).await;
    let mut last_version = 0;
    let mut watches = Watches::default();
    loop {
        tokio::time::sleep(rng.random_range(lo..=hi)).await;
        let value = format!("c{}-{incarnation}-{n}", spec.client);
        let op = choose(&mut rng, last_version, value);
        let id = op_id(incarnation, n);
        n += 1;
        let body = apply_watched(&zk, path, &op);
        let result = recorded_watched(spec, &zk, id, op.clone(), &mut watches, body).await;
        if let Some(v) = version_of(&result) {
            last_version = v;
        }
        recover(&zk, &result).await;
    }
}
