//! What the catalogue reads from Redis and keeps for a few seconds: the task types that
//! running workers registered, and the queues' webhook subscriptions. Every enqueue looks
//! them up, so they are read again at most every [`REFRESH`] (or when asked), and a failed
//! read keeps serving the last value known rather than failing the enqueue.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::RwLock;

use crate::broker::BrokerError;

/// How long a read value is served before it is read again.
pub(super) const REFRESH: Duration = Duration::from_secs(5);

/// A value read from Redis and when; `what` names it in the warning of a failed read.
pub(super) struct Refreshed<T> {
    cache: RwLock<(Option<Instant>, T)>,
    what: &'static str,
}

impl<T: Default> Refreshed<T> {
    /// Nothing read yet: the first lookup reads.
    pub(super) fn new(what: &'static str) -> Self {
        Self {
            cache: RwLock::new((None, T::default())),
            what,
        }
    }

    /// `pick` applied to the value, read again with `read` when it is older than [`REFRESH`]
    /// or `force` is set.
    pub(super) async fn get<R, F>(&self, force: bool, read: impl FnOnce() -> F, pick: impl Fn(&T) -> R) -> R
    where
        F: Future<Output = Result<T, BrokerError>>,
    {
        if !force {
            let cache = self.cache.read().await;
            if cache.0.is_some_and(|at| at.elapsed() < REFRESH) {
                return pick(&cache.1);
            }
        }
        match read().await {
            Ok(fresh) => {
                let picked = pick(&fresh);
                *self.cache.write().await = (Some(Instant::now()), fresh);
                picked
            }
            Err(e) => {
                tracing::warn!(error = %e, what = self.what, "cannot read from Redis; using the last known");
                pick(&self.cache.read().await.1)
            }
        }
    }

    /// The next lookup reads again (after this process changed the value itself).
    pub(super) async fn forget(&self) {
        self.cache.write().await.0 = None;
    }
}
