//! The gateway adds its request-tracing layer only when something receives what it makes
//! (`startup::tracing_requests`): with tower-http's events let through by the log filter,
//! each request is logged.
//!
//! A test binary of its own, whose subscriber is the process's global one, as in the gateway
//! binary. Among the other API tests, a subscriber set for one thread is not reliable: while
//! it is the only one, a callsite first reached on another test's thread caches that
//! thread's answer (none) for every thread.

use celeriac_api::{Application, GatewaySettings};
use celeriac_testkit::{LogCapture, RedisServer, unique_namespace};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::test]
async fn requests_are_logged_when_the_filter_lets_tower_http_debug_through() {
    let capture = LogCapture::default();
    let subscriber = celeriac::telemetry::subscriber(EnvFilter::new("tower_http=debug"), false, capture.clone(), false);
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this process");
    let redis = RedisServer::start_single();
    let reports = tempfile::tempdir().unwrap();
    let mut settings = GatewaySettings::default();
    settings.redis.url = redis.url();
    settings.redis.namespace = unique_namespace();
    settings.http.bind = ([127, 0, 0, 1], 0).into();
    settings.reports.dir = reports.path().to_owned();
    let stop = CancellationToken::new();
    let app = Application::build(settings, stop.clone()).await.expect("gateway builds");
    let url = format!("http://127.0.0.1:{}/healthz", app.port());
    let served = tokio::spawn(app.run_until_stopped());

    let status = reqwest::get(&url).await.expect("request sent").status();
    assert_eq!(status, 200);
    let logged = capture.contents();
    assert!(logged.contains("started processing request"), "{logged}");
    assert!(logged.contains("finished processing request"), "{logged}");
    stop.cancel();
    served.await.unwrap().unwrap();
}
