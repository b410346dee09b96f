//! Retry policies in the spirit of Kazoo's `KazooRetry` and Curator's
//! `ExponentialBackoffRetry`: bounded tries, an overall deadline, exponential backoff capped at
//! a maximum delay, with jitter drawn from the client's seeded RNG.
//!
//! Only errors that say "try again" ([`Error::is_retryable`]) are retried. Whether a
//! request is *safe* to repeat is the caller's call: a create or set that failed with
//! [`Error::ConnectionLoss`] may have applied (recipes handle that with protected names and
//! versions).

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// How often and how patiently to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (`None`: unbounded, the deadline decides).
    pub max_tries: Option<u32>,
    /// Give up once this much time has passed since the first attempt.
    pub deadline: Option<Duration>,
    /// Delay before the second attempt.
    pub initial_delay: Duration,
    /// Multiplier applied to the delay after each failed attempt.
    pub backoff: f64,
    /// Upper bound for one delay.
    pub max_delay: Duration,
    /// Each delay is scaled by a random factor in `[1 - jitter, 1 + jitter]`.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// Curator's common choice: 1 s doubling, 3 retries after the first try, capped at 30 s.
    fn default() -> Self {
        RetryPolicy::exponential(Duration::from_secs(1), 4)
    }
}

impl RetryPolicy {
    /// Exponential backoff from `initial_delay`, doubling, at most `max_tries` attempts.
    pub fn exponential(initial_delay: Duration, max_tries: u32) -> Self {
        RetryPolicy {
            max_tries: Some(max_tries),
            deadline: None,
            initial_delay,
            backoff: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: 0.2,
        }
    }

    /// One attempt, no retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_tries: Some(1),
            ..RetryPolicy::default()
        }
    }

    /// Retries until `deadline` has passed, however many attempts that takes.
    pub fn until(deadline: Duration) -> Self {
        RetryPolicy {
            max_tries: None,
            deadline: Some(deadline),
            initial_delay: Duration::from_millis(100),
            ..RetryPolicy::default()
        }
    }

    /// The same policy with at most `n` attempts.
    pub fn with_max_tries(mut self, n: u32) -> Self {
        self.max_tries = Some(n);
        self
    }

    /// The same policy with an overall deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The same policy with delays capped at `max`.
    pub fn with_max_delay(mut self, max: Duration) -> Self {
        self.max_delay = max;
        self
    }

    /// The same policy with jitter `fraction` (clamped to `[0, 1]`).
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// The delay after failed attempt number `attempt` (1 for the first), jittered.
    pub fn delay(&self, attempt: u32, rng: &mut ChaCha8Rng) -> Duration {
        let exp = attempt.saturating_sub(1).min(62) as i32;
        let base = self.initial_delay.as_secs_f64() * self.backoff.max(1.0).powi(exp);
        let capped = base.min(self.max_delay.as_secs_f64());
        let factor = if self.jitter > 0.0 {
            rng.random_range(1.0 - self.jitter..=1.0 + self.jitter)
        } else {
            1.0
        };
        Duration::from_secs_f64((capped * factor).max(0.0)).min(self.max_delay)
    }

    /// Whether attempt `attempt` (1-based) may be followed by another, `elapsed` after the first.
    fn may_retry(&self, attempt: u32, elapsed: Duration, next_delay: Duration) -> bool {
        if self.max_tries.is_some_and(|max| attempt >= max) {
            return false;
        }
        match self.deadline {
            Some(deadline) => elapsed + next_delay < deadline,
            None => true,
        }
    }
}

/// Runs `op` until it succeeds, fails with an error that is not retryable, or `policy` gives
/// up (then the last error is returned). Delays use `tokio::time` and jitter from `rng`.
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, rng: &mut ChaCha8Rng, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = tokio::time::Instant::now();
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() => {
                let delay = policy.delay(attempt, rng);
                if !policy.may_retry(attempt, start.elapsed(), delay) {
                    return Err(e);
                }
                tracing::debug!(attempt, ?delay, error = %e, "retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether an error is one [`retry`] would try again after.
pub fn is_retryable(e: &Error) -> bool {
    e.is_retryable()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::cell::Cell;

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy::exponential(Duration::from_millis(100), 10)
            .with_jitter(0.0)
            .with_max_delay(Duration::from_millis(500));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let d: Vec<_> = (1..=5).map(|a| p.delay(a, &mut rng).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn jitter_stays_in_bounds_and_follows_the_seed() {
        let p = RetryPolicy::exponential(Duration::from_millis(1000), 10).with_jitter(0.5);
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        for attempt in 1..4 {
            let x = p.delay(attempt, &mut a);
            assert_eq!(x, p.delay(attempt, &mut b));
        }
        let x = p.delay(1, &mut a).as_millis();
        assert!((500..=1500).contains(&x), "{x}");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_up_to_max_tries() {
        let p = RetryPolicy::exponential(Duration::from_millis(10), 3);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let calls = Cell::new(0);
        let r: Result<()> = retry(&p, &mut rng, || {
            calls.set(calls.get() + 1);
            async { Err(Error::ConnectionLoss) }
        })
        .await;
        assert_eq!(r, Err(Error::ConnectionLoss));
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_the_first_non_retryable_error_or_success() {
        let p = RetryPolicy::exponential(Duration::from_millis(10), 5);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let calls = Cell::new(0);
        let r: Result<()> = retry(&p, &mut rng, || {
            calls.set(calls.get() + 1);
            async { Err(Error::SessionExpired) }
        })
        .await;
        assert_eq!(r, Err(Error::SessionExpired));
        assert_eq!(calls.get(), 1);
        let calls = Cell::new(0);
        let r = retry(&p, &mut rng, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(Error::ConnectionLoss)
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_bounds_the_whole_run() {
        let p = RetryPolicy::until(Duration::from_secs(2)).with_jitter(0.0);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let start = tokio::time::Instant::now();
        let r: Result<()> = retry(&p, &mut rng, || async { Err(Error::ConnectionLoss) }).await;
        assert_eq!(r, Err(Error::ConnectionLoss));
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(start.elapsed() >= Duration::from_millis(700));
    }
}
