//! The worker's probes on an optional port (`worker.health_bind`): `GET /healthz` answers 200
//! while the process lives; `GET /readyz` answers 200 only while the worker is consuming
//! (its last call to Redis succeeded), 503 otherwise, so an orchestrator sees a stalled worker.
//! A small axum router, the framework the gateway already uses; every answer closes its
//! connection, since a probe asks once and goes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves the probes on `listener` until `stop` fires.
pub async fn serve(listener: TcpListener, consuming: Arc<AtomicBool>, stop: CancellationToken) {
    let served = axum::serve(listener, router(consuming))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the health probes stopped");
    }
}

/// Binds the probe port.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

fn router(consuming: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { answer(StatusCode::OK, "ok") }))
        .route("/readyz", get(ready))
        .fallback(|| async { answer(StatusCode::NOT_FOUND, "no such probe") })
        .with_state(consuming)
}

async fn ready(State(consuming): State<Arc<AtomicBool>>) -> Response {
    if consuming.load(Ordering::Relaxed) {
        answer(StatusCode::OK, "consuming")
    } else {
        answer(StatusCode::SERVICE_UNAVAILABLE, "not consuming: Redis unreachable")
    }
}

/// `{"status": ...}` as JSON, with `connection: close`.
fn answer(status: StatusCode, text: &'static str) -> Response {
    let body = serde_json::json!({ "status": text });
    let close = [(header::CONNECTION, HeaderValue::from_static("close"))];
    (status, close, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One HTTP/1.1 request as a plain client writes it; the whole answer, read to the end
    /// (so it also proves the server closes the connection).
    async fn get(port: u16, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_string(&mut response))
            .await
            .expect("the probe closes the connection")
            .unwrap();
        response
    }

    #[tokio::test]
    async fn probes_answer_liveness_readiness_and_unknown_paths() {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (consuming, stop) = (Arc::new(AtomicBool::new(false)), CancellationToken::new());
        let server = tokio::spawn(serve(listener, Arc::clone(&consuming), stop.clone()));

        let expect = |response: String, status: &str, body: &str| {
            assert!(response.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{response}");
            assert!(response.contains("content-type: application/json\r\n"), "{response}");
            assert!(response.ends_with(&format!("\r\n\r\n{body}")), "{response}");
        };
        expect(get(port, "/healthz").await, "200 OK", r#"{"status":"ok"}"#);
        expect(
            get(port, "/readyz").await,
            "503 Service Unavailable",
            r#"{"status":"not consuming: Redis unreachable"}"#,
        );
        consuming.store(true, Ordering::Relaxed);
        expect(get(port, "/readyz").await, "200 OK", r#"{"status":"consuming"}"#);
        expect(get(port, "/nope").await, "404 Not Found", r#"{"status":"no such probe"}"#);

        stop.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .expect("the probes stop when told")
            .unwrap();
    }
}
