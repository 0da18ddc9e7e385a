//! The webhook deliverer of a worker process: for each queue it consumes, takes the endings of
//! tasks that named a `callback_url` from the queue's webhooks stream (`celeriac::broker`,
//! `webhooks.rs`) and `POST`s each to its URL, signed like a remote task's run
//! (`Celeriac-Signature`, `celeriac::signing`). A `2xx` answer delivers it; anything else (or
//! no answer within `[webhooks] timeout`) leaves it for a retry after a doubling backoff,
//! until `[webhooks] max_attempts`. Every attempt is logged in the task's record (`webhooks`).
//!
//! The body is `{"task_id", "state", "attempt", "task"}`, `task` being the record as
//! `GET /tasks/{id}` shows it (`null` once expired). Header `Celeriac-Webhook-Id` names the
//! ending (the same on every attempt): a receiver that got an attempt whose answer was lost
//! sees the same id again and can ignore it. Redirects are followed only to the same origin.

use std::sync::Arc;
use std::time::{Duration, Instant};

use celeriac::broker::WebhookEnding;
use celeriac::settings::WebhookSettings;
use celeriac::signing::{SIGNATURE_HEADER, header_value};
use celeriac::{QueueName, WebhookDelivery};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::shared::Shared;

/// How often each queue's stream is looked at when there was nothing to deliver.
const PERIOD: Duration = Duration::from_millis(250);
/// Most endings taken from one queue per pass, delivered side by side.
const BATCH: usize = 32;
/// The header naming the ending, the same on every attempt.
pub const WEBHOOK_ID_HEADER: &str = "Celeriac-Webhook-Id";

/// What a delivery needs: the settings (with a secret) and the HTTP client.
pub(crate) struct Deliverer {
    settings: WebhookSettings,
    secret: Vec<u8>,
    client: reqwest::Client,
}

impl Deliverer {
    /// `None` without a secret: then this worker delivers no webhook (a gateway with the same
    /// settings accepts no `callback_url` either).
    pub fn new(settings: &WebhookSettings, client: reqwest::Client) -> Option<Self> {
        let secret = settings.secret.as_ref()?.expose_secret().as_bytes().to_vec();
        Some(Self {
            settings: settings.clone(),
            secret,
            client,
        })
    }
}

/// Delivers until `stop` fires.
pub(crate) async fn run(shared: Arc<Shared>, deliverer: Deliverer, stop: CancellationToken) {
    let deliverer = Arc::new(deliverer);
    loop {
        let mut delivered = 0;
        for queue in &shared.queues() {
            match pass(&shared, &deliverer, queue).await {
                Ok(n) => delivered += n,
                Err(e) => tracing::warn!(queue = %queue, error = %e, "cannot read the webhooks to deliver; will retry"),
            }
        }
        if delivered > 0 {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(PERIOD) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One look at a queue: its new endings and its due retries, each delivered once, side by
/// side. Returns how many attempts were made.
async fn pass(shared: &Shared, deliverer: &Arc<Deliverer>, queue: &QueueName) -> Result<usize, celeriac::BrokerError> {
    let me = &shared.config.id;
    let settings = &deliverer.settings;
    let mut endings = shared.broker.webhook_endings(queue, me, BATCH).await?;
    let retry_after = |reads: u32| settings.retry_after(reads);
    endings.extend(shared.broker.webhook_retries_due(queue, me, retry_after, BATCH).await?);
    let attempts = endings.len();
    let calls = endings.into_iter().map(|ending| attempt(shared, deliverer, ending));
    futures::future::join_all(calls).await;
    Ok(attempts)
}

/// Makes one attempt and logs it; the ending leaves the stream when delivered or given up.
async fn attempt(shared: &Shared, deliverer: &Deliverer, ending: WebhookEnding) {
    let record = match shared.broker.get(&ending.task_id).await {
        Ok(record) => record,
        Err(e) => {
            tracing::warn!(task_id = %ending.task_id, error = %e, "cannot read the task for its webhook; will retry");
            return;
        }
    };
    let url = record.as_ref().and_then(|r| r.options.callback_url.clone());
    let started = Instant::now();
    let at = chrono::Utc::now();
    let (status, error) = match &url {
        Some(url) => deliverer.post(url, &ending, &record).await,
        // The record expired before its webhook went: nothing says where to.
        None => (None, Some("the task's record is gone: no callback URL to deliver to".to_owned())),
    };
    let delivered = error.is_none();
    let gave_up = !delivered && (url.is_none() || ending.attempt >= deliverer.settings.max_attempts);
    let outcome = match (delivered, gave_up) {
        (true, _) => "delivered",
        (false, true) => "gave_up",
        (false, false) => "failed",
    };
    let log = WebhookDelivery {
        attempt: ending.attempt,
        state: ending.state,
        at,
        outcome: outcome.to_owned(),
        status,
        error,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    if !delivered {
        tracing::info!(task_id = %ending.task_id, attempt = ending.attempt, outcome, error = ?log.error, "webhook not delivered");
    }
    if let Err(e) = shared.broker.webhook_attempted(&ending, &log, delivered || gave_up).await {
        tracing::warn!(task_id = %ending.task_id, error = %e, "cannot log the webhook's attempt; it will be tried again");
    }
}

impl Deliverer {
    /// `POST`s the ending; the status answered, and an error unless it was `2xx`.
    async fn post(&self, url: &str, ending: &WebhookEnding, record: &Option<celeriac::TaskRecord>) -> (Option<u16>, Option<String>) {
        let body = serde_json::json!({
            "task_id": ending.task_id.to_string(),
            "state": ending.state,
            "attempt": ending.attempt,
            "task": record,
        });
        let body = serde_json::to_vec(&body).expect("JSON of JSON values");
        let signature = header_value(&self.secret, chrono::Utc::now().timestamp(), &body);
        let webhook_id = format!("{}:{}", ending.task_id.queue(), ending.entry);
        let sent = self
            .client
            .post(url)
            .timeout(self.settings.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(WEBHOOK_ID_HEADER, webhook_id)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => (Some(answer.status().as_u16()), None),
            Ok(answer) => (
                Some(answer.status().as_u16()),
                Some(format!("the receiver answered {}", answer.status())),
            ),
            Err(e) if e.is_timeout() => (None, Some(format!("no answer within {:?}", self.settings.timeout))),
            Err(e) => (None, Some(format!("cannot reach the receiver: {e}"))),
        }
    }
}
