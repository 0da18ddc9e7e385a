//! Moves scheduled tasks (countdown, eta, retry backoff) to their queue when they fall due,
//! checking twice a second. Delays live in Redis, never in a worker's memory, so restarts
//! neither lose nor duplicate them. The same sweep empties the workflow outboxes that a
//! crashed worker left behind (normally the acker empties them at once).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::shared::Shared;

const PERIOD: Duration = Duration::from_millis(500);
const MAX_PER_CALL: usize = 500;

pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        for queue in &shared.queues() {
            crate::acker::advance_workflows(&shared, queue).await;
            if let Err(e) = shared.broker.finish_purge(queue).await {
                tracing::warn!(queue = %queue, error = %e, "cannot finish an interrupted purge; will retry");
            }
            loop {
                match shared.broker.promote_due(queue, MAX_PER_CALL).await {
                    Ok(n) if n == MAX_PER_CALL => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(queue = %queue, error = %e, "cannot promote due tasks; will retry");
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PERIOD) => {}
            _ = stop.cancelled() => return,
        }
    }
}
