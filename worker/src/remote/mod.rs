//! Remote task types run by this worker: a task whose type is not registered in this process
//! but is stored as a remote type (`celeriac::remote`) is run by `POST`ing it to the type's
//! URL (`call.rs`). It runs as any other task: it holds a concurrency slot for the whole call,
//! the worker's heartbeat keeps its lease alive however long the call lasts, its time limits
//! apply, and its outcome goes through the same retry decision. The catalogue is read from
//! Redis and kept for a few seconds (a name not found is looked up again at once, so a type
//! put a moment ago runs).

mod call;

pub(crate) use call::client as http_client;

pub use call::tls;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use celeriac::remote::RemoteTaskType;
use celeriac::{Broker, TaskError};
use tokio::sync::{OnceCell, RwLock};

use crate::task_type::{Registered, RunFuture};

const REFRESH: Duration = Duration::from_secs(5);

/// When the catalogue was read, and the types it held by name.
type Cached = (Option<Instant>, HashMap<String, Arc<RemoteTaskType>>);

/// The remote task types as this worker last read them, and what a call needs.
pub struct RemoteTasks {
    /// The gateway's address as endpoints reach it, for `progress_url`; none: no progress URL.
    gateway_url: Option<String>,
    client: reqwest::Client,
    cache: RwLock<Cached>,
    run_secret: OnceCell<Vec<u8>>,
}

impl std::fmt::Debug for RemoteTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteTasks")
            .field("gateway_url", &self.gateway_url)
            .finish_non_exhaustive()
    }
}

impl RemoteTasks {
    /// What calls need: the gateway's URL for `progress_url`, and a CA file trusted for
    /// `https://` endpoints besides the web roots. An error names what is wrong with the file.
    pub fn new(gateway_url: Option<String>, ca_file: Option<&std::path::Path>) -> Result<Self, String> {
        Ok(Self {
            gateway_url: gateway_url.map(|u| u.trim_end_matches('/').to_owned()),
            client: call::client(ca_file)?,
            cache: RwLock::new((None, HashMap::new())),
            run_secret: OnceCell::new(),
        })
    }

    /// The remote task type `name` as a runnable handler, if there is one.
    pub async fn lookup(self: &Arc<Self>, broker: &Broker, name: &str) -> Option<Registered> {
        let ty = match self.cached(name, false).await {
            Some(ty) => ty,
            None => {
                self.refresh(broker).await;
                self.cached(name, true).await?
            }
        };
        let this = Arc::clone(self);
        let broker = broker.clone();
        let spec = ty.spec();
        Some(Registered::from_fn(spec, move |ctx, args| -> RunFuture {
            let this = Arc::clone(&this);
            let broker = broker.clone();
            let ty = Arc::clone(&ty);
            let args = args.to_owned();
            Box::pin(async move {
                let progress_url = match (&this.gateway_url, ctx.run_token()) {
                    (Some(base), Some(token)) => {
                        let secret = this
                            .run_secret
                            .get_or_try_init(|| broker.run_secret())
                            .await
                            .map_err(|e| TaskError::retryable(format!("cannot read the run-token key: {e}")))?;
                        Some(format!("{base}/runs/{}/progress", token.encode(secret)))
                    }
                    _ => None,
                };
                call::run(&this.client, &ty, &ctx, &args, progress_url).await
            })
        }))
    }

    async fn cached(&self, name: &str, any_age: bool) -> Option<Arc<RemoteTaskType>> {
        let cache = self.cache.read().await;
        if !any_age && cache.0.is_none_or(|at| at.elapsed() >= REFRESH) {
            return None;
        }
        cache.1.get(name).cloned()
    }

    /// Reads the catalogue again (when Redis cannot be read, the last copy stays).
    async fn refresh(&self, broker: &Broker) {
        match broker.task_types().await {
            Ok(types) => {
                let fresh = types.into_iter().map(|t| (t.name.clone(), Arc::new(t))).collect();
                *self.cache.write().await = (Some(Instant::now()), fresh);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the remote task types; using the last known"),
        }
    }
}
