//! What every handler shares: the broker, the event fan-out for long polls, the task
//! catalogue, the settings and the stop signal.

use std::sync::Arc;

use celeriac::broker::TaskEvents;
use celeriac::{Broker, Settings};
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;

#[derive(Clone)]
pub struct AppState {
    pub broker: Broker,
    pub events: TaskEvents,
    pub catalog: Arc<Catalog>,
    pub settings: Arc<Settings>,
    /// Fires when the gateway is stopping: long polls return at once.
    pub shutdown: CancellationToken,
}
