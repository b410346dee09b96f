//! Several locks taken as one (Curator's `InterProcessMultiLock`): all or nothing.
//!
//! The locks are always taken in one order, sorted by path, whatever order they were given
//! in: two multi-locks sharing some locks then never wait for each other in a cycle. If any
//! lock cannot be had (an error, a `try`/timeout that gives up, a cancelled future), the ones
//! already taken are released before the call returns, so a failed acquire holds nothing.
//!
//! The guard releases every lock when dropped, and [`MultiLockGuard::lost`] resolves as soon
//! as any one of them can no longer be trusted.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use super::lock::{Lock, LockGuard};
use super::protected::at_most;
use crate::client::Client;
use crate::error::{Error, Result};

/// A set of locks acquired together. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MultiLock {
    locks: Vec<Lock>,
}

impl MultiLock {
    /// Locks on each of `paths` (default naming and policy). At least one path; no path twice.
    pub fn new(client: &Client, paths: &[&str]) -> Result<MultiLock> {
        let locks = paths
            .iter()
            .map(|p| Lock::new(client, p))
            .collect::<Result<Vec<_>>>()?;
        Self::from_locks(locks)
    }

    /// The given locks (each with its own naming, policy and data), taken as one. At least
    /// one lock; no path twice.
    pub fn from_locks(mut locks: Vec<Lock>) -> Result<MultiLock> {
        if locks.is_empty() {
            return Err(Error::InvalidArgument("a multi-lock needs a lock".into()));
        }
        locks.sort_by(|a, b| a.path().cmp(b.path()));
        if let Some(w) = locks.windows(2).find(|w| w[0].path() == w[1].path()) {
            return Err(Error::InvalidArgument(format!(
                "lock {} given twice to a multi-lock",
                w[0].path()
            )));
        }
        Ok(MultiLock { locks })
    }

    /// The locks' paths, in the order they are taken.
    pub fn paths(&self) -> Vec<&str> {
        self.locks.iter().map(Lock::path).collect()
    }

    /// Waits until every lock is held. On failure, or if the future is dropped, the locks
    /// already taken are released.
    pub async fn acquire(&self) -> Result<MultiLockGuard> {
        let mut guards = Vec::with_capacity(self.locks.len());
        for lock in &self.locks {
            // On `?` (or cancellation) `guards` drops, releasing what was taken.
            guards.push(lock.acquire().await?);
        }
        Ok(MultiLockGuard { guards })
    }

    /// Takes every lock if each is free now; `None` otherwise (releasing what was taken).
    pub async fn try_acquire(&self) -> Result<Option<MultiLockGuard>> {
        let mut guards = Vec::with_capacity(self.locks.len());
        for lock in &self.locks {
            match lock.try_acquire().await? {
                Some(guard) => guards.push(guard),
                None => return Ok(None),
            }
        }
        Ok(Some(MultiLockGuard { guards }))
    }

    /// Waits at most `timeout` for every lock; `None` if they did not all come (what was
    /// taken is released).
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<MultiLockGuard>> {
        at_most(timeout, self.acquire()).await
    }
}

/// Every lock of a [`MultiLock`], held. Dropping it releases them all (background deletes);
/// [`MultiLockGuard::release`] does the same and waits.
#[derive(Debug)]
pub struct MultiLockGuard {
    guards: Vec<LockGuard>,
}

impl MultiLockGuard {
    /// The individual guards, in path order.
    pub fn guards(&self) -> &[LockGuard] {
        &self.guards
    }

    /// Each lock's fencing token, in path order.
    pub fn fencing_tokens(&self) -> Vec<i64> {
        self.guards.iter().map(LockGuard::fencing_token).collect()
    }

    /// Whether any of the locks can no longer be trusted.
    pub fn is_lost(&self) -> bool {
        self.guards.iter().any(LockGuard::is_lost)
    }

    /// Resolves as soon as any of the locks can no longer be trusted.
    pub async fn lost(&self) {
        let mut each: Vec<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = self
            .guards
            .iter()
            .map(|g| Box::pin(g.lost()) as Pin<Box<dyn Future<Output = ()> + Send + '_>>)
            .collect();
        std::future::poll_fn(|cx| {
            if each.iter_mut().any(|f| f.as_mut().poll(cx).is_ready()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Releases every lock (last taken first) and waits until their nodes are deleted;
    /// returns the first error, after trying them all.
    pub async fn release(mut self) -> Result<()> {
        let mut first = Ok(());
        while let Some(guard) = self.guards.pop() {
            if let Err(e) = guard.release().await {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}
