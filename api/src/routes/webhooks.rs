//! A queue's webhook subscription, for operators: `PUT /queues/{queue}/webhook` gives every
//! task enqueued into the queue from then on a `callback_url` (unless it names its own), so a
//! service hears of every ending of a queue without changing its callers; `GET` shows it and
//! `DELETE` ends it. Deliveries work as for a task's own `callback_url` (signed, retried,
//! logged in the record).

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::routes::queues::parse_whole_queue;
use crate::scope::Scope;
use crate::state::AppState;

/// A subscription's URL, as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionBody {
    /// Where the queue's tasks' endings are `POST`ed: `http(s)://host[/path]`, printable ASCII.
    #[schema(min_length = 8, max_length = 2048, pattern = r"^https?://[A-Za-z0-9.:\[\]_-]+(/[!-~]*)?$")]
    pub url: String,
}

/// A queue's subscription.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookSubscription {
    pub queue: String,
    pub url: String,
}

const QUEUE_PARAM_DESCRIPTION: &str = "Queue name (not a shard's)";

/// The queue's webhook subscription.
#[utoipa::path(get, path = "/queues/{queue}/webhook", tag = "queues",
    params(("queue" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]{1,64}$", description = QUEUE_PARAM_DESCRIPTION)),
    responses(
        (status = 200, description = "The subscription", body = WebhookSubscription),
        (status = 404, description = "The queue has no subscription", body = ErrorBody),
        (status = 422, description = "Invalid queue name", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn get_webhook(
    State(state): State<AppState>,
    scope: Scope,
    Path(queue): Path<String>,
) -> Result<Json<WebhookSubscription>, ApiError> {
    scope.check_queue(&queue)?;
    let queue = parse_whole_queue(&queue)?;
    let url = state.broker.webhook_subscriptions().await?.remove(queue.as_str());
    let url = url.ok_or_else(|| ApiError::NotFound(format!("queue {queue} has no webhook subscription")))?;
    Ok(Json(WebhookSubscription {
        queue: queue.to_string(),
        url,
    }))
}

/// Subscribe a queue to completion webhooks: every task enqueued into it from now on without
/// a `callback_url` of its own gets this one (gateways read subscriptions again within 5 s;
/// this one at once). Replaces an earlier subscription of the queue.
#[utoipa::path(put, path = "/queues/{queue}/webhook", tag = "queues",
    params(("queue" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]{1,64}$", description = QUEUE_PARAM_DESCRIPTION)),
    request_body = SubscriptionBody,
    responses(
        (status = 200, description = "The subscription", body = WebhookSubscription),
        (status = 422, description = "Invalid queue name or URL, or no `[webhooks] secret` to sign with; the field is named", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn put_webhook(
    State(state): State<AppState>,
    scope: Scope,
    Path(queue): Path<String>,
    crate::extract::ApiJson(body): crate::extract::ApiJson<SubscriptionBody>,
) -> Result<Json<WebhookSubscription>, ApiError> {
    scope.check_queue(&queue)?;
    let queue = parse_whole_queue(&queue)?;
    if !celeriac::http_url::is_http_url(&body.url) {
        return Err(ApiError::invalid("url", celeriac::http_url::HTTP_URL_EXPECTED));
    }
    if state.settings.webhooks.secret.is_none() {
        return Err(ApiError::invalid("url", celeriac::settings::WebhookSettings::NO_SECRET));
    }
    state.broker.subscribe_webhook(&queue, &body.url).await?;
    state.catalog.forget_subscriptions().await;
    Ok(Json(WebhookSubscription {
        queue: queue.to_string(),
        url: body.url,
    }))
}

/// End a queue's webhook subscription (tasks enqueued before keep their `callback_url`).
#[utoipa::path(delete, path = "/queues/{queue}/webhook", tag = "queues",
    params(("queue" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]{1,64}$", description = QUEUE_PARAM_DESCRIPTION)),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "The queue had no subscription", body = ErrorBody),
        (status = 422, description = "Invalid queue name", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    scope: Scope,
    Path(queue): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    scope.check_queue(&queue)?;
    let queue = parse_whole_queue(&queue)?;
    if !state.broker.unsubscribe_webhook(&queue).await? {
        return Err(ApiError::NotFound(format!("queue {queue} has no webhook subscription")));
    }
    state.catalog.forget_subscriptions().await;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
