//! Building and running the gateway: `Application::build` binds the listener (port 0 works,
//! for tests) and wires state and middleware; `run_until_stopped` serves until the stop
//! token fires, then finishes in-flight requests. It refuses to start without API tokens on
//! an address other hosts can reach.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use celeriac::Broker;
use celeriac::broker::{EnqueueBatcher, TaskEvents};
use celeriac::catalog::Catalog;
use celeriac::settings::redact_url;
use celeriac_archive::History;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{MakeSpan, TraceLayer};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{Auth, check_exposure};
use crate::error::ApiError;
use crate::openapi::ApiDoc;
use crate::settings::GatewaySettings;
use crate::state::{AppState, Shared};

pub struct Application {
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
}

impl Application {
    /// Binds `settings.http.bind` and prepares the routes. Redis is not needed yet: the
    /// gateway starts while it is down, answers 503 and recovers by itself. Fails without
    /// tokens on a non-loopback address.
    pub async fn build(settings: GatewaySettings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let auth = Auth::from_settings(&settings.auth);
        check_exposure(settings.http.bind, &auth)?;
        if auth.is_open() {
            tracing::warn!(bind = %settings.http.bind, "no API tokens configured: every request is let in (loopback only)");
        }
        let broker = Broker::open(&settings.redis, settings.result_ttl())
            .await?
            .with_archive(settings.archive.enabled)
            .with_payload(settings.tasks.payload());
        for (queue, n) in &settings.tasks.shards {
            // Raised, never lowered; a worker with the same settings raises it too.
            if let Err(e) = broker.raise_shards(queue, *n).await {
                tracing::warn!(queue = %queue, error = %e, "cannot record the queue's shards in Redis yet");
            }
        }
        if let Err(e) = broker.apply_declared_limits(&settings.tasks.limits).await {
            tracing::warn!(error = %e, "cannot set the settings' queue limits in Redis yet");
        }
        if let Err(e) = broker.publish_task_types(&settings.declared_task_types()).await {
            tracing::warn!(error = %e, "could not publish the settings' remote task types (Redis unreachable?)");
        }
        let history = connect_history(&settings).await?;
        let listener = TcpListener::bind(settings.http.bind).await?;
        let events = TaskEvents::spawn(&broker, shutdown.clone());
        let state = AppState::new(Shared {
            batcher: EnqueueBatcher::new(broker.clone()),
            broker,
            events,
            catalog: Arc::new(Catalog::new(&settings.tasks).with_webhooks(&settings.webhooks)),
            settings: Arc::new(settings),
            auth: Arc::new(auth),
            worker_metrics: Arc::default(),
            history,
            shutdown: shutdown.clone(),
            run_secret: Default::default(),
        });
        Ok(Self {
            listener,
            router: app(state),
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(address = %self.listener.local_addr()?, "gateway listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(self.shutdown.cancelled_owned())
            .await
    }
}

/// The archive of `[archive] database_url`, migrated to this build's schema (a newer one is
/// refused), or why not, in one line naming the setting (the URL's password hidden).
async fn connect_history(settings: &GatewaySettings) -> anyhow::Result<Option<History>> {
    let Some(url) = &settings.archive.database_url else {
        return Ok(None);
    };
    let history = History::connect(url, 8).await.map_err(|e| {
        let e = e.to_string().replace('\n', " ");
        anyhow::anyhow!("archive.database_url ({}): {e}", redact_url(url))
    })?;
    tracing::info!(database = %redact_url(url), "reading history from the archive");
    Ok(Some(history))
}

/// The whole HTTP application over `state`, for `Application` and for tests without a socket.
pub fn app(state: AppState) -> Router {
    let body_limit = state.settings.http.body_limit_bytes;
    let request_timeout = state.settings.http.max_wait + Duration::from_secs(30);
    let auth = Arc::clone(&state.auth);
    let (routes, api) = crate::routes::router(ApiDoc::openapi());
    // One stack, applied once: each `Router::layer` call wraps every route in a box of its
    // own, which a request then clones and calls through. The first layer is the outermost.
    let layers = ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::Internal("a handler panicked".into()))
        }))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        // Outside the routes' own role checks, which read it (`auth::protect`).
        .layer(Extension(auth));
    let app = routes
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .layer(layers);
    match tracing_requests() {
        true => app.layer(TraceLayer::new_for_http().make_span_with(request_span)),
        false => app,
    }
}

/// Whether requests are traced: when spans are exported, or when the log filter lets
/// tower-http's per-request events through (`RUST_LOG=tower_http=debug`). Otherwise the
/// layer would make spans and events nobody receives, at 7 to 10% of the gateway's
/// throughput on its hot routes (docs/benchmarks.md); a failed request is logged either
/// way, by [`ApiError`].
fn tracing_requests() -> bool {
    celeriac::telemetry::exporting() || tracing::enabled!(target: "tower_http::trace::on_request", tracing::Level::DEBUG)
}

/// The span of a request. When spans are exported, one at `info` (exported), a child of the
/// request's `traceparent` when it has a valid one; else tower-http's usual `debug` span (off
/// at the default filter, so a request pays nothing for it).
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    if !celeriac::telemetry::exporting() {
        return tower_http::trace::DefaultMakeSpan::new().make_span(request);
    }
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{} {}", request.method(), request.uri().path()),
        otel.kind = "server",
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
    );
    if let Some(parent) = crate::enqueue::traceparent(request.headers()) {
        parent.parent_of(&span);
    }
    span
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::EnvFilter;

    use super::tracing_requests;

    /// Whether the gateway traces requests under a log filter. (Its own callsite is reached by
    /// no other test of this crate, so a subscriber scoped to this thread decides it.)
    fn traced_under(filter: &str) -> bool {
        let subscriber = celeriac::telemetry::subscriber(EnvFilter::new(filter), false, std::io::sink, false);
        tracing::subscriber::with_default(subscriber, tracing_requests)
    }

    #[test]
    fn requests_are_traced_only_when_the_filter_asks_for_tower_http_debug() {
        assert!(!traced_under("info"), "the default filter receives nothing of the layer");
        assert!(!traced_under("info,celeriac=debug"), "the development filter neither");
        assert!(traced_under("info,tower_http=debug"));
        assert!(traced_under("debug"));
    }
}
