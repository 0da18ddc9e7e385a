//! The worker's probes on an optional port (`worker.health_bind`): `GET /healthz` answers 200
//! while the process lives; `GET /readyz` answers 200 only while the worker is consuming
//! (its last call to Redis succeeded), 503 otherwise, so an orchestrator sees a stalled worker.
//! A few lines of HTTP/1.1 by hand: the worker needs no web framework for two fixed answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves the probes on `listener` until `stop` fires.
pub async fn serve(listener: TcpListener, consuming: Arc<AtomicBool>, stop: CancellationToken) {
    loop {
        let (mut socket, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
            _ = stop.cancelled() => return,
        };
        let consuming = Arc::clone(&consuming);
        tokio::spawn(async move {
            // Read the whole request head before answering: closing a socket with unread
            // bytes makes the kernel reset the connection instead of ending it.
            let mut buf = Vec::with_capacity(256);
            let mut chunk = [0u8; 256];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let request = String::from_utf8_lossy(&buf);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = match path {
                "/healthz" => ("200 OK", r#"{"status":"ok"}"#),
                "/readyz" if consuming.load(Ordering::Relaxed) => ("200 OK", r#"{"status":"consuming"}"#),
                "/readyz" => ("503 Service Unavailable", r#"{"status":"not consuming: Redis unreachable"}"#),
                _ => ("404 Not Found", r#"{"status":"no such probe"}"#),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

/// Binds the probe port.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}
