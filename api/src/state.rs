//! What every handler shares: the broker, the event fan-out for long polls, the task
//! catalogue, the settings, the tokens, the workers' metrics as last seen, and the stop
//! signal.

use std::sync::Arc;

use celeriac::broker::TaskEvents;
use celeriac::{Broker, Settings};
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::catalog::Catalog;
use crate::metrics::WorkerMetrics;

#[derive(Clone)]
pub struct AppState {
    pub broker: Broker,
    pub events: TaskEvents,
    pub catalog: Arc<Catalog>,
    pub settings: Arc<Settings>,
    pub auth: Arc<Auth>,
    /// The workers' task metrics, kept between scrapes so sums never go down.
    pub worker_metrics: Arc<WorkerMetrics>,
    /// Fires when the gateway is stopping: long polls return at once.
    pub shutdown: CancellationToken,
}
