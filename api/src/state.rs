//! What every handler shares: the broker, the event fan-out for long polls, the task
//! catalogue, the settings, the tokens, the workers' metrics as last seen, and the stop
//! signal.

use std::sync::Arc;

use celeriac::Broker;
use celeriac::broker::{EnqueueBatcher, TaskEvents};
use celeriac::catalog::Catalog;
use celeriac_archive::History;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::metrics::WorkerMetrics;
use crate::settings::GatewaySettings;

/// The handlers' state. axum clones it for every request, so it is one shared reference
/// (cloning the broker itself copies its connection settings: a profile of `POST /emails`
/// showed those clones and drops at 5% of the gateway's CPU).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] refers to, built once at start-up.
pub struct Shared {
    pub broker: Broker,
    /// Stores the plain tasks of concurrent requests in shared calls (`broker/batcher.rs`).
    pub batcher: EnqueueBatcher,
    pub events: TaskEvents,
    pub catalog: Arc<Catalog>,
    pub settings: Arc<GatewaySettings>,
    pub auth: Arc<Auth>,
    /// The workers' task metrics, kept between scrapes so sums never go down.
    pub worker_metrics: Arc<WorkerMetrics>,
    /// The PostgreSQL archive, when `[archive] database_url` is set: history is read from it.
    pub history: Option<History>,
    /// Fires when the gateway is stopping: long polls return at once.
    pub shutdown: CancellationToken,
    /// The namespace's run-token key (`Broker::run_secret`), read at the first use.
    pub run_secret: tokio::sync::OnceCell<Vec<u8>>,
}

impl Shared {
    /// The key that signs and checks run tokens.
    pub async fn run_secret(&self) -> Result<&[u8], celeriac::BrokerError> {
        self.run_secret
            .get_or_try_init(|| self.broker.run_secret())
            .await
            .map(Vec::as_slice)
    }
}
