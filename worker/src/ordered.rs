//! One fetch loop for all of a worker's queues, when they are taken in `strict` or `weighted`
//! order (`order.rs`): each fetch fills the free slots from the queues in the order of the
//! moment, the first queue first, so a queue later in the order only gets the slots the
//! earlier ones leave free. When every queue is empty it blocks on all of them at once (one
//! waiter each, no polling). With `fair` order the runtime runs `fetcher.rs` per queue instead.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use celeriac::QueueName;
use celeriac::broker::{Claim, QueueWaiter};
use celeriac::reconnect::Backoff;
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::acker::Settlement;
use crate::fetcher::{IDLE_WAIT, PAUSED_WAIT, dispatch, fetch_until_answered, free_slots, pause};
use crate::shared::Shared;

pub(crate) async fn run(shared: Arc<Shared>, settle: mpsc::UnboundedSender<Settlement>, stop: CancellationToken) {
    let queues: Vec<QueueName> = shared.config.queues.clone();
    let mut waiters: Vec<QueueWaiter> = queues.iter().map(|q| QueueWaiter::new(&shared.broker, q)).collect();
    let mut retry = Backoff::default();
    loop {
        let Some(mut permits) = free_slots(&shared, &stop).await else {
            return;
        };
        // What each queue's claim found when it took nothing (empty unless said otherwise).
        let mut found = vec![Claim::Ids(Vec::new()); queues.len()];
        let mut took = false;
        for i in shared.config.order.claim_order(queues.len()) {
            if permits.is_empty() {
                break;
            }
            let Some(fetched) = fetch_until_answered(&shared, &queues[i], permits.len(), &stop).await else {
                return;
            };
            match dispatch(&shared, &queues[i], fetched, &mut permits, &settle, &stop) {
                None => took = true,
                Some(nothing) => found[i] = nothing,
            }
        }
        drop(permits);
        if took {
            retry.reset();
            continue;
        }
        // Every queue was empty, held back by a limit or paused: wait on all of them at once
        // for what each lacks (work, a token, a slot). A paused queue is looked at again after
        // a short while.
        let timeout = if found.contains(&Claim::Paused) { PAUSED_WAIT } else { IDLE_WAIT };
        let waits: Vec<_> = waiters
            .iter_mut()
            .zip(&found)
            .map(|(w, claim)| w.wait_after(claim, timeout).boxed())
            .collect();
        tokio::select! {
            (waited, _, _) = futures::future::select_all(waits) => if let Err(e) = waited {
                shared.consuming.store(false, Ordering::Relaxed);
                tracing::warn!(error = %e, "waiting for work failed; retrying");
                pause(&stop, retry.next_wait()).await;
            },
            _ = stop.cancelled() => return,
        }
    }
}
