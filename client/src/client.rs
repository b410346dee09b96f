//! The public async API: one method per ZooKeeper operation. Each method validates its path,
//! adds the chroot, hands the request to the session task and maps the reply back into the
//! client's terms.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::config::{Builder, Config};
use crate::connector::Connector;
use crate::error::{Error, Result};
use crate::op::{Op, OpResult, ReadOp, ReadResult};
use crate::path::{validate_create_path, validate_path};
use crate::proto::jute::{Field, Writer};
use crate::proto::{
    Acl, AddWatchMode, AddWatchRequest, AuthPacket, CheckVersionRequest, ClientInfo, CreateMode,
    CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, MultiOp, MultiRequest, MultiResult,
    OpCode, PathRequest, Request, Response, SetAclRequest, SetDataRequest, Stat, WatchedRequest,
};
use crate::retry::{retry, RetryPolicy};
use crate::session::{self, Control, Failure, SessionInfo, Submit, WatchSlot};
use crate::state::State;
use crate::watch::{strip_chroot, PersistentWatcher, Watcher};

/// How [`Client::create_with`] creates a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// The create mode.
    pub mode: CreateMode,
    /// The ACL; `None` uses the client's default.
    pub acl: Option<Vec<Acl>>,
    /// Time to live in milliseconds, for the TTL modes.
    pub ttl: Option<i64>,
    /// Create missing parents (as persistent nodes, or containers with
    /// [`parent_containers`](Self::parent_containers)) first.
    pub create_parents: bool,
    /// Missing parents are created as container nodes (Curator's
    /// `creatingParentContainersIfNeeded`): ZooKeeper deletes a container once its last child
    /// is gone, so directories made only to hold recipe nodes do not pile up.
    pub parent_containers: bool,
}

impl CreateOptions {
    /// Options for `mode`, default ACL, no TTL, no parents.
    pub fn new(mode: CreateMode) -> Self {
        CreateOptions {
            mode,
            acl: None,
            ttl: None,
            create_parents: false,
            parent_containers: false,
        }
    }

    /// With an explicit ACL.
    pub fn acl(mut self, acl: Vec<Acl>) -> Self {
        self.acl = Some(acl);
        self
    }

    /// With a time to live (TTL modes).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        self
    }

    /// Creating missing parents.
    pub fn create_parents(mut self) -> Self {
        self.create_parents = true;
        self
    }

    /// Creating missing parents as container nodes (ZooKeeper 3.5+), which the server deletes
    /// once they have had children and are empty again (Curator's
    /// `creatingParentContainersIfNeeded`). Existing parents are left as they are.
    pub fn create_parent_containers(mut self) -> Self {
        self.create_parents = true;
        self.parent_containers = true;
        self
    }
}

/// A ZooKeeper client. Cheap to clone: clones share one session. The session is closed when
/// [`Client::close`] is called or the last clone is dropped (best effort).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    requests: mpsc::Sender<Submit>,
    control: mpsc::UnboundedSender<Control>,
    info: watch::Receiver<SessionInfo>,
    transitions: broadcast::Sender<State>,
    chroot: String,
    hosts: Vec<String>,
    default_acl: Vec<Acl>,
    retry: RetryPolicy,
    rng: Mutex<ChaCha8Rng>,
    connector: Arc<dyn Connector>,
    connect_timeout: Duration,
    next_watch_id: AtomicU64,
    renews: bool,
    delete_stale: bool,
    /// A planted bug (feature `planted-bugs` only) the recipes read.
    planted: Option<crate::planted::PlantedBug>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Close { done: None });
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let info = self.inner.info.borrow();
        f.debug_struct("Client")
            .field("session_id", &format_args!("{:#x}", info.session_id))
            .field("state", &info.state)
            .field("server", &info.server)
            .finish()
    }
}

impl Client {
    /// A builder for a client of the ensemble at `hosts` (`h1:2181,h2:2181/chroot`).
    pub fn builder(hosts: &str) -> Builder {
        Builder::new(hosts)
    }

    /// Connects with default options and waits until connected.
    pub async fn connect(hosts: &str) -> Result<Client> {
        Client::builder(hosts).connect().await
    }

    pub(crate) fn start(config: Config) -> Client {
        let chroot = config.connect.chroot.clone();
        let hosts = config.connect.hosts.clone();
        let default_acl = config.default_acl.clone();
        let retry = config.retry.clone();
        // A stream of its own, so the session's and the caller's draws do not interleave.
        let rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed_c11e_u64);
        let connector = config.connector.clone();
        let connect_timeout = config.connect_timeout.unwrap_or(config.session_timeout);
        let renews = config.renew_session;
        let delete_stale = config.delete_stale;
        let planted = config.planted;
        let handles = session::spawn(config);
        Client {
            inner: Arc::new(Inner {
                requests: handles.requests,
                control: handles.control,
                info: handles.info,
                transitions: handles.transitions,
                chroot,
                hosts,
                default_acl,
                retry,
                rng: Mutex::new(rng),
                connector,
                connect_timeout,
                next_watch_id: AtomicU64::new(1),
                renews,
                delete_stale,
                planted,
            }),
        }
    }

    // ----- session -----

    /// Whether `bug` is planted in this client (always false without the `planted-bugs`
    /// feature).
    pub(crate) fn planted(&self, bug: crate::planted::PlantedBug) -> bool {
        cfg!(feature = "planted-bugs") && self.inner.planted == Some(bug)
    }

    /// The current connection state.
    pub fn state(&self) -> State {
        self.inner.info.borrow().state
    }

    /// The session id (0 before the first connect).
    pub fn session_id(&self) -> i64 {
        self.inner.info.borrow().session_id
    }

    /// The session id and password, to resume the session from another client.
    pub fn session_credentials(&self) -> (i64, Vec<u8>) {
        let info = self.inner.info.borrow();
        (info.session_id, info.password.clone())
    }

    /// The negotiated session timeout (the requested one before the first connect).
    pub fn session_timeout(&self) -> Duration {
        self.inner.info.borrow().timeout
    }

    /// The server currently connected to.
    pub fn server(&self) -> Option<String> {
        self.inner.info.borrow().server.clone()
    }

    /// A receiver of the latest session snapshot; `changed()` wakes on every update.
    pub fn session_info(&self) -> watch::Receiver<SessionInfo> {
        self.inner.info.clone()
    }

    /// Every state transition from now on, in order (a slow reader may miss some and is told
    /// so by `RecvError::Lagged`).
    pub fn state_changes(&self) -> broadcast::Receiver<State> {
        self.inner.transitions.subscribe()
    }

    /// Waits until the state satisfies `pred`, returning that state.
    pub async fn wait_for_state(&self, pred: impl Fn(State) -> bool) -> State {
        let mut rx = self.inner.info.clone();
        loop {
            let state = rx.borrow_and_update().state;
            if pred(state) {
                return state;
            }
            if rx.changed().await.is_err() {
                return rx.borrow().state;
            }
        }
    }

    /// Waits until connected; fails if the client is finished first (see
    /// [`is_finished`](Self::is_finished)).
    pub async fn wait_connected(&self) -> Result<()> {
        let renews = self.inner.renews;
        let state = self
            .wait_for_state(|s| s.is_connected() || finished(s, renews))
            .await;
        if state.is_connected() {
            Ok(())
        } else {
            Err(terminal_error(state))
        }
    }

    /// Whether this client will never connect again: closed, refused, or its session lost
    /// without [`renew_expired_session`](crate::Builder::renew_expired_session).
    pub fn is_finished(&self) -> bool {
        finished(self.state(), self.inner.renews)
    }

    /// Whether an expired session is followed by a new one.
    pub fn renews_expired_session(&self) -> bool {
        self.inner.renews
    }

    /// Whether recipes delete their nodes of an earlier session from the current one (see
    /// [`Builder::delete_stale_recipe_nodes`](crate::Builder::delete_stale_recipe_nodes)).
    pub fn deletes_stale_recipe_nodes(&self) -> bool {
        self.inner.delete_stale
    }

    /// Closes the session and waits until it is over. Connected, the client sends
    /// closeSession and waits for the server's answer: the session's ephemeral nodes are gone
    /// when this returns. Not connected (suspended, or still looking for a server), the client
    /// stops without reaching a server: the session and its ephemeral nodes stay until the
    /// servers expire it, one session timeout after they last heard from the client.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .control
            .send(Control::Close { done: Some(tx) })
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// The retry policy configured on the builder.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// Runs `op` under the client's retry policy (see [`retry`](crate::retry::retry)).
    pub async fn retry<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut rng = {
            let mut shared = self.inner.rng.lock().unwrap_or_else(|e| e.into_inner());
            let seed = rand::Rng::random::<u64>(&mut *shared);
            ChaCha8Rng::seed_from_u64(seed)
        };
        retry(&self.inner.retry, &mut rng, op).await
    }

    /// A value from the client's seeded RNG (recipes use it for node names).
    pub fn random_u64(&self) -> u64 {
        let mut shared = self.inner.rng.lock().unwrap_or_else(|e| e.into_inner());
        rand::Rng::random::<u64>(&mut *shared)
    }

    // ----- plumbing -----

    fn server_path(&self, path: &str) -> String {
        if self.inner.chroot.is_empty() {
            path.to_owned()
        } else if path == "/" {
            self.inner.chroot.clone()
        } else {
            format!("{}{}", self.inner.chroot, path)
        }
    }

    fn client_path(&self, server_path: &str) -> String {
        strip_chroot(&self.inner.chroot, server_path)
    }

    fn checked(&self, path: &str) -> Result<String> {
        validate_path(path)?;
        Ok(self.server_path(path))
    }

    /// The jute string of the server path of client path `path` (already validated), in a
    /// fresh request body with room for `extra` more bytes.
    fn path_body(&self, path: &str, extra: usize) -> Vec<u8> {
        let chroot = self.inner.chroot.as_str();
        let (head, tail) = if chroot.is_empty() {
            ("", path)
        } else if path == "/" {
            (chroot, "")
        } else {
            (chroot, path)
        };
        let mut body = Vec::with_capacity(4 + head.len() + tail.len() + extra);
        body.put_len(head.len() + tail.len());
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(tail.as_bytes());
        body
    }

    /// A CreateRequest body for `path` (already validated), borrowing everything.
    fn create_body(&self, path: &str, data: &[u8], acl: &Vec<Acl>, mode: CreateMode) -> Vec<u8> {
        let mut body = self.path_body(path, 4 + data.len() + 4 + 24 * acl.len() + 4);
        body.put_buffer(data);
        Field::put(acl, &mut body);
        Field::put(&mode, &mut body);
        body
    }

    /// A SetDataRequest body for `path` (already validated), borrowing everything.
    fn set_data_body(&self, path: &str, data: &[u8], version: i32) -> Vec<u8> {
        let mut body = self.path_body(path, 4 + data.len() + 4);
        body.put_buffer(data);
        body.put_i32(version);
        body
    }

    async fn call(
        &self,
        request: Request,
        watch: Option<WatchSlot>,
    ) -> std::result::Result<Response, Failure> {
        let mut body = Vec::new();
        request.encode_body(&mut body);
        let watch = watch.map(|slot| (slot, request.path().unwrap_or_default().to_owned()));
        self.call_encoded(request.op_code(), body, watch).await
    }

    /// Sends a request whose body is already encoded; `watch` carries its server path.
    async fn call_encoded(
        &self,
        op: OpCode,
        body: Vec<u8>,
        watch: Option<(WatchSlot, String)>,
    ) -> std::result::Result<Response, Failure> {
        // Submitting and awaiting the reply are each one event, not a loop, so they opt out of
        // tokio's cooperative budget: under it, a caller driving thousands of requests from one
        // task (join_all, FuturesUnordered) re-polls every pending request after the budget
        // runs out, which costs more than the requests themselves. The queue stays bounded: a
        // full queue still parks the caller until the session task takes from it. (A permit
        // first, then the request: the future does not hold the request twice.)
        let permit = match self.inner.requests.try_reserve() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Full(())) => {
                match tokio::task::unconstrained(self.inner.requests.reserve()).await {
                    Ok(permit) => permit,
                    Err(_) => return Err(Failure::Client(terminal_error(self.state()))),
                }
            }
            Err(mpsc::error::TrySendError::Closed(())) => {
                return Err(Failure::Client(terminal_error(self.state())))
            }
        };
        let (tx, rx) = oneshot::channel();
        permit.send(Submit {
            op,
            body,
            reply: tx,
            watch,
        });
        match tokio::task::unconstrained(rx).await {
            Ok(r) => r.map(|reply| reply.response),
            Err(_) => Err(Failure::Client(terminal_error(self.state()))),
        }
    }

    /// Sends `request` about client path `path`; errors name `path`.
    async fn request(
        &self,
        path: &str,
        request: Request,
        watch: Option<WatchSlot>,
    ) -> Result<Response> {
        self.call(request, watch)
            .await
            .map_err(|f| failure(f, path))
    }

    /// Like [`request`](Self::request) for a body already encoded; a watch goes on the server
    /// path of `path`.
    async fn request_encoded(
        &self,
        path: &str,
        op: OpCode,
        body: Vec<u8>,
        watch: Option<WatchSlot>,
    ) -> Result<Response> {
        let watch = watch.map(|slot| (slot, self.server_path(path)));
        self.call_encoded(op, body, watch)
            .await
            .map_err(|f| failure(f, path))
    }

    // ----- operations -----

    /// Creates `path` with `data` in `mode` and the default ACL; returns the actual path
    /// (with the sequence suffix for sequential modes) and the new node's Stat.
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        self.create_with(path, data, &CreateOptions::new(mode))
            .await
    }

    /// Creates a node with full options (ACL, TTL, missing parents).
    pub async fn create_with(
        &self,
        path: &str,
        data: &[u8],
        opts: &CreateOptions,
    ) -> Result<(String, Stat)> {
        validate_create_path(path, opts.mode.is_sequential())?;
        match self.create_once(path, data, opts).await {
            // Boxed, like the other rare paths below: a future is as large as its largest
            // state, and callers with many creates in flight pay for that size on each one.
            Err(Error::NoNode { .. }) if opts.create_parents => {
                Box::pin(async {
                    let mode = if opts.parent_containers {
                        CreateMode::Container
                    } else {
                        CreateMode::Persistent
                    };
                    self.create_parents(path, mode).await?;
                    self.create_once(path, data, opts).await
                })
                .await
            }
            other => other,
        }
    }

    async fn create_once(
        &self,
        path: &str,
        data: &[u8],
        opts: &CreateOptions,
    ) -> Result<(String, Stat)> {
        let response = if opts.mode.is_ttl() || opts.ttl.is_some() {
            let request =
                self.create_request(path, data, opts.mode, opts.acl.as_ref(), opts.ttl)?;
            Box::pin(self.request(path, request, None)).await?
        } else {
            // The common case, encoded straight from the borrowed arguments (the same bytes
            // as a CreateRequest).
            let acl = opts.acl.as_ref().unwrap_or(&self.inner.default_acl);
            let body = self.create_body(path, data, acl, opts.mode);
            let op = if opts.mode.is_container() {
                OpCode::CreateContainer
            } else {
                OpCode::Create2
            };
            self.request_encoded(path, op, body, None).await?
        };
        match response {
            Response::Create2(r) => {
                let path = if self.inner.chroot.is_empty() {
                    r.path
                } else {
                    self.client_path(&r.path)
                };
                Ok((path, r.stat))
            }
            other => Err(unexpected(&other)),
        }
    }

    fn create_request(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
        acl: Option<&Vec<Acl>>,
        ttl: Option<i64>,
    ) -> Result<Request> {
        let path = self.server_path(path);
        let acl = acl.unwrap_or(&self.inner.default_acl).clone();
        let data = data.to_vec();
        if mode.is_ttl() {
            let ttl = ttl.ok_or_else(|| Error::InvalidArgument(format!("{mode:?} needs a TTL")))?;
            return Ok(Request::CreateTtl(CreateTtlRequest {
                path,
                data,
                acl,
                flags: mode,
                ttl,
            }));
        }
        if ttl.is_some() {
            return Err(Error::InvalidArgument(format!("{mode:?} takes no TTL")));
        }
        let body = CreateRequest {
            path,
            data,
            acl,
            flags: mode,
        };
        Ok(if mode.is_container() {
            Request::CreateContainer(body)
        } else {
            Request::Create2(body)
        })
    }

    /// Creates every missing ancestor of `path` as an empty node of `mode` (persistent or
    /// container).
    async fn create_parents(&self, path: &str, mode: CreateMode) -> Result<()> {
        let mut at = 0;
        while let Some(i) = path[at + 1..].find('/') {
            at += 1 + i;
            let parent = &path[..at];
            match self
                .create_once(parent, &[], &CreateOptions::new(mode))
                .await
            {
                Ok(_) | Err(Error::NodeExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Creates `path` and any missing parents as persistent nodes; succeeds if it exists.
    pub async fn ensure_path(&self, path: &str) -> Result<()> {
        validate_path(path)?;
        if path == "/" {
            return Ok(());
        }
        match self
            .create_with(
                path,
                &[],
                &CreateOptions::new(CreateMode::Persistent).create_parents(),
            )
            .await
        {
            Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes `path` if its version is `version` (`None`: any version).
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        validate_path(path)?;
        let mut body = self.path_body(path, 4);
        body.put_i32(version.unwrap_or(-1));
        self.request_encoded(path, OpCode::Delete, body, None)
            .await
            .map(|_| ())
    }

    /// Deletes `path` and everything under it; a node already gone is not an error.
    pub async fn delete_recursive(&self, path: &str) -> Result<()> {
        validate_path(path)?;
        // Depth-first, children before parents; a stack instead of recursion.
        let mut stack = vec![(path.to_owned(), false)];
        while let Some((node, expanded)) = stack.pop() {
            if !expanded {
                match self.get_children(&node).await {
                    Ok(children) => {
                        stack.push((node.clone(), true));
                        for child in children {
                            stack.push((join(&node, &child), false));
                        }
                    }
                    Err(Error::NoNode { .. }) => {}
                    Err(e) => return Err(e),
                }
            } else if node != "/" {
                match self.delete(&node, None).await {
                    Ok(()) | Err(Error::NoNode { .. }) => {}
                    Err(Error::NotEmpty { .. }) => stack.push((node, false)),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The Stat of `path`, `None` if it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        self.exists_inner(path, None).await
    }

    /// Like [`exists`](Self::exists), leaving a watch that fires when the node is created,
    /// changed or deleted.
    pub async fn exists_watch(&self, path: &str) -> Result<(Option<Stat>, Watcher)> {
        let (watcher, tx) = Watcher::new(path.to_owned());
        let stat = self
            .exists_inner(path, Some(WatchSlot::OneShot(tx)))
            .await?;
        Ok((stat, watcher))
    }

    async fn exists_inner(&self, path: &str, watch: Option<WatchSlot>) -> Result<Option<Stat>> {
        validate_path(path)?;
        let mut body = self.path_body(path, 1);
        body.put_bool(watch.is_some());
        match self
            .request_encoded(path, OpCode::Exists, body, watch)
            .await
        {
            Ok(Response::Stat(r)) => Ok(Some(r.stat)),
            Ok(other) => Err(unexpected(&other)),
            Err(Error::NoNode { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The data and Stat of `path`.
    pub async fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        self.get_data_inner(path, None).await
    }

    /// Like [`get_data`](Self::get_data), leaving a watch that fires when the data changes or
    /// the node is deleted.
    pub async fn get_data_watch(&self, path: &str) -> Result<(Vec<u8>, Stat, Watcher)> {
        let (watcher, tx) = Watcher::new(path.to_owned());
        let (data, stat) = self
            .get_data_inner(path, Some(WatchSlot::OneShot(tx)))
            .await?;
        Ok((data, stat, watcher))
    }

    async fn get_data_inner(
        &self,
        path: &str,
        watch: Option<WatchSlot>,
    ) -> Result<(Vec<u8>, Stat)> {
        validate_path(path)?;
        let mut body = self.path_body(path, 1);
        body.put_bool(watch.is_some());
        match self
            .request_encoded(path, OpCode::GetData, body, watch)
            .await?
        {
            Response::GetData(r) => Ok((r.data, r.stat)),
            other => Err(unexpected(&other)),
        }
    }

    /// Writes `data` to `path` if its version is `version` (`None`: any); returns the new Stat.
    pub async fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        validate_path(path)?;
        let body = self.set_data_body(path, data, version.unwrap_or(-1));
        match self
            .request_encoded(path, OpCode::SetData, body, None)
            .await?
        {
            Response::Stat(r) => Ok(r.stat),
            other => Err(unexpected(&other)),
        }
    }

    /// The names of `path`'s children (in the server's order).
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>> {
        self.children_inner(path, None).await.map(|(c, _)| c)
    }

    /// Like [`get_children`](Self::get_children), leaving a watch that fires when a child is
    /// added or removed, or the node is deleted.
    pub async fn get_children_watch(&self, path: &str) -> Result<(Vec<String>, Watcher)> {
        let (watcher, tx) = Watcher::new(path.to_owned());
        let (children, _) = self
            .children_inner(path, Some(WatchSlot::OneShot(tx)))
            .await?;
        Ok((children, watcher))
    }

    /// The children of `path` and its Stat.
    pub async fn get_children_with_stat(&self, path: &str) -> Result<(Vec<String>, Stat)> {
        self.children_inner(path, None).await
    }

    async fn children_inner(
        &self,
        path: &str,
        watch: Option<WatchSlot>,
    ) -> Result<(Vec<String>, Stat)> {
        let request = Request::GetChildren2(WatchedRequest {
            path: self.checked(path)?,
            watch: watch.is_some(),
        });
        match self.request(path, request, watch).await? {
            Response::GetChildren2(r) => Ok((r.children, r.stat)),
            other => Err(unexpected(&other)),
        }
    }

    /// How many nodes are below `path` (all descendants, not just children).
    pub async fn count_descendants(&self, path: &str) -> Result<i32> {
        let request = Request::GetAllChildrenNumber(PathRequest {
            path: self.checked(path)?,
        });
        match self.request(path, request, None).await? {
            Response::GetAllChildrenNumber(r) => Ok(r.total_number),
            other => Err(unexpected(&other)),
        }
    }

    /// The session's ephemeral nodes whose path starts with `prefix` (`/` for all).
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        let request = Request::GetEphemerals(PathRequest {
            path: self.checked(prefix)?,
        });
        match self.request(prefix, request, None).await? {
            Response::GetEphemerals(r) => {
                Ok(r.ephemerals.iter().map(|p| self.client_path(p)).collect())
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The ACL of `path` and its Stat.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        let request = Request::GetAcl(PathRequest {
            path: self.checked(path)?,
        });
        match self.request(path, request, None).await? {
            Response::GetAcl(r) => Ok((r.acl, r.stat)),
            other => Err(unexpected(&other)),
        }
    }

    /// Sets the ACL of `path` if its ACL version is `version` (`None`: any).
    pub async fn set_acl(&self, path: &str, acl: Vec<Acl>, version: Option<i32>) -> Result<Stat> {
        let request = Request::SetAcl(SetAclRequest {
            path: self.checked(path)?,
            acl,
            version: version.unwrap_or(-1),
        });
        match self.request(path, request, None).await? {
            Response::Stat(r) => Ok(r.stat),
            other => Err(unexpected(&other)),
        }
    }

    /// Waits until the connected server has caught up with the leader as of this call.
    pub async fn sync(&self, path: &str) -> Result<()> {
        let request = Request::Sync(PathRequest {
            path: self.checked(path)?,
        });
        self.request(path, request, None).await.map(|_| ())
    }

    /// Runs `ops` atomically: all apply or none. On failure, [`Error::MultiFailed`] says
    /// which op failed and why.
    pub async fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        let mut multi = MultiRequest {
            ops: Vec::with_capacity(ops.len()),
        };
        for op in ops {
            multi.ops.push(self.multi_op(op)?);
        }
        let response = match self.request("", Request::Multi(multi), None).await? {
            Response::Multi(r) => r,
            other => return Err(unexpected(&other)),
        };
        if let Some((index, code)) = response.first_error() {
            let path = ops.get(index).map(Op::path).unwrap_or_default().to_owned();
            return Err(Error::MultiFailed { index, code, path });
        }
        if response.results.len() != ops.len() {
            return Err(Error::Protocol(format!(
                "multi of {} ops answered with {} results",
                ops.len(),
                response.results.len()
            )));
        }
        response
            .results
            .into_iter()
            .map(|r| match r {
                MultiResult::Create(c) => Ok(OpResult::Create {
                    path: self.client_path(&c.path),
                    stat: None,
                }),
                MultiResult::Create2(c) => Ok(OpResult::Create {
                    path: self.client_path(&c.path),
                    stat: Some(c.stat),
                }),
                MultiResult::Delete => Ok(OpResult::Delete),
                MultiResult::SetData(s) => Ok(OpResult::SetData { stat: s.stat }),
                MultiResult::Check => Ok(OpResult::Check),
                other => Err(Error::Protocol(format!(
                    "unexpected multi result {other:?}"
                ))),
            })
            .collect()
    }

    fn multi_op(&self, op: &Op) -> Result<MultiOp> {
        Ok(match op {
            Op::Create {
                path,
                data,
                mode,
                acl,
                ttl,
            } => {
                validate_create_path(path, mode.is_sequential())?;
                match self.create_request(path, data, *mode, acl.as_ref(), *ttl)? {
                    Request::CreateTtl(r) => MultiOp::CreateTtl(r),
                    Request::CreateContainer(r) => MultiOp::CreateContainer(r),
                    Request::Create2(r) => MultiOp::Create2(r),
                    other => {
                        return Err(Error::Protocol(format!("cannot put {other:?} in a multi")))
                    }
                }
            }
            Op::Delete { path, version } => MultiOp::Delete(DeleteRequest {
                path: self.checked(path)?,
                version: version.unwrap_or(-1),
            }),
            Op::SetData {
                path,
                data,
                version,
            } => MultiOp::SetData(SetDataRequest {
                path: self.checked(path)?,
                data: data.clone(),
                version: version.unwrap_or(-1),
            }),
            Op::Check { path, version } => MultiOp::Check(CheckVersionRequest {
                path: self.checked(path)?,
                version: version.unwrap_or(-1),
            }),
        })
    }

    /// Runs several reads in one round trip; each succeeds or fails on its own.
    pub async fn multi_read(&self, ops: &[ReadOp]) -> Result<Vec<ReadResult>> {
        let mut multi = MultiRequest {
            ops: Vec::with_capacity(ops.len()),
        };
        for op in ops {
            multi.ops.push(match op {
                ReadOp::GetData(p) => MultiOp::GetData(WatchedRequest {
                    path: self.checked(p)?,
                    watch: false,
                }),
                ReadOp::GetChildren(p) => MultiOp::GetChildren(WatchedRequest {
                    path: self.checked(p)?,
                    watch: false,
                }),
            });
        }
        let response = match self.request("", Request::MultiRead(multi), None).await? {
            Response::Multi(r) => r,
            other => return Err(unexpected(&other)),
        };
        Ok(response
            .results
            .into_iter()
            .zip(ops)
            .map(|(r, op)| match r {
                MultiResult::GetData(d) => ReadResult::Data(d.data, d.stat),
                MultiResult::GetChildren(c) => ReadResult::Children(c.children),
                MultiResult::Error(code) => {
                    let path = match op {
                        ReadOp::GetData(p) | ReadOp::GetChildren(p) => p,
                    };
                    ReadResult::Error(Error::from_code(code, path))
                }
                other => ReadResult::Error(Error::Protocol(format!(
                    "unexpected multiRead result {other:?}"
                ))),
            })
            .collect())
    }

    /// Adds credentials to the session (kept and replayed after every reconnect).
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let packet = AuthPacket {
            auth_type: 0,
            scheme: scheme.to_owned(),
            auth: auth.to_vec(),
        };
        if self
            .inner
            .control
            .send(Control::AddAuth { packet, reply: tx })
            .is_err()
        {
            return Err(terminal_error(self.state()));
        }
        match rx.await {
            Ok(r) => r.map_err(|f| failure(f, "")),
            Err(_) => Err(terminal_error(self.state())),
        }
    }

    /// The identities the server associates with this session.
    pub async fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        match self.request("", Request::WhoAmI, None).await? {
            Response::WhoAmI(r) => Ok(r.client_info),
            other => Err(unexpected(&other)),
        }
    }

    /// The ensemble's configuration (`/zookeeper/config`, read without the chroot).
    pub async fn get_config(&self) -> Result<(Vec<u8>, Stat)> {
        let request = Request::GetData(WatchedRequest {
            path: "/zookeeper/config".to_owned(),
            watch: false,
        });
        match self.request("/zookeeper/config", request, None).await? {
            Response::GetData(r) => Ok((r.data, r.stat)),
            other => Err(unexpected(&other)),
        }
    }

    /// Adds a persistent (or persistent-recursive) watch on `path`: a stream of every event
    /// until the watcher is dropped.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<PersistentWatcher> {
        let server_path = self.checked(path)?;
        let id = self.inner.next_watch_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let request = Request::AddWatch(AddWatchRequest {
            path: server_path,
            mode,
        });
        self.request(path, request, Some(WatchSlot::Persistent { mode, id, tx }))
            .await?;
        Ok(PersistentWatcher::new(
            path.to_owned(),
            mode,
            id,
            rx,
            self.inner.control.clone(),
        ))
    }

    /// Sends a four-letter command (`ruok`, `srvr`, `mntr`, ...) to the connected server (or
    /// the first host) over a side connection and returns its answer.
    pub async fn four_letter(&self, command: &str) -> Result<String> {
        if command.len() != 4 || !command.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(Error::InvalidArgument(format!(
                "{command:?} is not a four-letter word"
            )));
        }
        let host = self
            .server()
            .or_else(|| self.inner.hosts.first().cloned())
            .ok_or_else(|| Error::InvalidArgument("no host".into()))?;
        let exchange = async {
            let mut stream = self
                .inner
                .connector
                .connect(&host)
                .await
                .map_err(|e| Error::Protocol(format!("{host}: {e}")))?;
            stream
                .write_all(command.as_bytes())
                .await
                .map_err(|e| Error::Protocol(format!("{host}: {e}")))?;
            let mut out = Vec::new();
            // Bounded: a four-letter answer is small; refuse to buffer an endless one.
            let mut limited = (&mut stream).take(4 * 1024 * 1024);
            limited
                .read_to_end(&mut out)
                .await
                .map_err(|e| Error::Protocol(format!("{host}: {e}")))?;
            Ok(String::from_utf8_lossy(&out).into_owned())
        };
        tokio::time::timeout(self.inner.connect_timeout, exchange)
            .await
            .map_err(|_| Error::Timeout("four-letter command"))?
    }

    /// The server's version, from `srvr` (`3.8.0-...`).
    pub async fn server_version(&self) -> Result<String> {
        let answer = self.four_letter("srvr").await?;
        answer
            .lines()
            .find_map(|l| l.strip_prefix("Zookeeper version: "))
            .map(|v| v.split(',').next().unwrap_or(v).trim().to_owned())
            .ok_or_else(|| Error::Protocol(format!("no version in srvr answer {answer:?}")))
    }
}

/// `parent` + `/` + `child`.
fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Whether `state` means the client will never connect again.
fn finished(state: State, renews: bool) -> bool {
    match state {
        State::Lost => !renews,
        s => s.is_terminal(),
    }
}

/// The error every request gets once the session is over.
fn terminal_error(state: State) -> Error {
    match state {
        State::Lost => Error::SessionExpired,
        State::AuthFailed => Error::AuthFailed,
        _ => Error::Closed,
    }
}

fn failure(f: Failure, path: &str) -> Error {
    match f {
        Failure::Code(code) => Error::from_code(code, path),
        Failure::Client(e) => e,
    }
}

fn unexpected(r: &Response) -> Error {
    Error::Protocol(format!("unexpected reply body {r:?}"))
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Client>();
    let _ = ErrorCode::Ok;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bodies encoded straight from borrowed arguments are the bytes the request records
    /// encode to, with and without a chroot.
    #[tokio::test]
    async fn borrowed_request_bodies_match_the_records() {
        for hosts in ["127.0.0.1:1", "127.0.0.1:1/app"] {
            let client = Client::builder(hosts).build().expect("client");
            for path in ["/", "/a", "/a/b-0000000001"] {
                let server = client.server_path(path);
                let mut body = client.path_body(path, 0);
                body.put_bool(true);
                let record = Request::GetData(WatchedRequest {
                    path: server.clone(),
                    watch: true,
                });
                let mut want = Vec::new();
                record.encode_body(&mut want);
                assert_eq!(body, want, "getData {hosts} {path}");

                let mut body = client.path_body(path, 0);
                body.put_i32(7);
                let mut want = Vec::new();
                Request::Delete(DeleteRequest {
                    path: server.clone(),
                    version: 7,
                })
                .encode_body(&mut want);
                assert_eq!(body, want, "delete {hosts} {path}");

                let mut want = Vec::new();
                Request::SetData(SetDataRequest {
                    path: server.clone(),
                    data: b"xyz".to_vec(),
                    version: -1,
                })
                .encode_body(&mut want);
                assert_eq!(
                    client.set_data_body(path, b"xyz", -1),
                    want,
                    "setData {hosts} {path}"
                );

                for mode in [CreateMode::PersistentSequential, CreateMode::Container] {
                    let acl = Acl::open_unsafe();
                    let mut want = Vec::new();
                    Request::Create2(CreateRequest {
                        path: server.clone(),
                        data: b"d".to_vec(),
                        acl: acl.clone(),
                        flags: mode,
                    })
                    .encode_body(&mut want);
                    assert_eq!(
                        client.create_body(path, b"d", &acl, mode),
                        want,
                        "create {hosts} {path}"
                    );
                }
            }
            client.close().await;
        }
    }

    /// The draws protected node names are made of: random for clients without a seed (two
    /// such clients with identical options differ), one stream for one seed (a simulation
    /// replays).
    #[tokio::test]
    async fn guid_draws_are_random_without_a_seed_and_replay_with_one() {
        let draws = |client: &Client| [client.random_u64(), client.random_u64()];
        let a = Client::builder("127.0.0.1:1").build().expect("client");
        let b = Client::builder("127.0.0.1:1").build().expect("client");
        assert_ne!(draws(&a), draws(&b));
        let c = Client::builder("127.0.0.1:1")
            .seed(9)
            .build()
            .expect("client");
        let d = Client::builder("127.0.0.1:1")
            .seed(9)
            .build()
            .expect("client");
        assert_eq!(draws(&c), draws(&d));
        for client in [a, b, c, d] {
            client.close().await;
        }
    }
}
