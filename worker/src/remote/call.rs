//! One call of a remote task: `POST` of `{id, task, args, attempt, delivery, progress_url}` to
//! the type's URL, signed (`Celeriac-Signature`, see `celeriac::signing`), and the answer
//! turned into an outcome:
//! - `2xx`: `SUCCESS` with the answer's JSON body (an empty body is `null`);
//! - `408`, `429`, `5xx`, a timeout, a refused or broken connection: a retryable error (a
//!   `Retry-After` in seconds on a `429` or `503` sets the retry's delay);
//! - any other status (other `4xx`, a redirect that was not followed): a permanent failure
//!   carrying the status and at most [`BODY_EXCERPT`] bytes of the body;
//! - an answer over the type's `max_answer_bytes`: a permanent `AnswerTooLarge` (read no
//!   further), and a `2xx` body that is not JSON: a permanent `InvalidAnswer`.
//!
//! Redirects are followed only to the same scheme, host and port (at most 5): a task's
//! arguments never leave for a host its type does not name.

use std::path::Path;
use std::time::Duration;

use celeriac::remote::RemoteTaskType;
use celeriac::signing::{SIGNATURE_HEADER, header_value};
use celeriac::{TaskContext, TaskError};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

/// Most bytes of a failed answer's body kept in the task's error.
pub const BODY_EXCERPT: usize = 1024;
const MAX_REDIRECTS: usize = 5;

/// The HTTP client every remote call of this worker shares (one connection pool). `https://`
/// endpoints must present a certificate from the usual web roots or, when given, from the CA
/// in `ca_file` (PEM; `[worker] remote_ca_file`). An error names what is wrong with the file.
pub(crate) fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first();
        let same_origin = first.is_some_and(|from| {
            let to = attempt.url();
            from.scheme() == to.scheme() && from.host_str() == to.host_str() && from.port_or_known_default() == to.port_or_known_default()
        });
        if attempt.previous().len() > MAX_REDIRECTS || !same_origin {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    celeriac::tls::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(policy)
        .user_agent(concat!("celeriac/", env!("CARGO_PKG_VERSION")))
        .use_preconfigured_tls(tls(ca_file)?)
        .build()
        .map_err(|e| format!("the HTTP client for remote tasks: {e}"))
}

/// TLS with the ring provider, trusting the web roots and the certificates in `ca_file`.
pub fn tls(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: holds no PEM certificate", path.display()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Runs `args` (JSON text) as a task of `ty`; the result as JSON text, or the error.
pub(super) async fn run(
    client: &reqwest::Client,
    ty: &RemoteTaskType,
    ctx: &TaskContext,
    args: &str,
    progress_url: Option<String>,
) -> Result<String, TaskError> {
    let args: Value = serde_json::from_str(args)
        .map_err(|e| TaskError::permanent(format!("stored arguments are not JSON: {e}")).with_kind("InvalidArgs"))?;
    let token = ctx.run_token();
    let body = json!({
        "id": ctx.task_id().to_string(),
        "task": ty.name,
        "args": args,
        "attempt": ctx.attempt(),
        "delivery": token.as_ref().map(|t| t.delivery),
        "progress_url": progress_url,
    });
    let body = serde_json::to_vec(&body).expect("a JSON value serializes");
    let signature = header_value(ty.secret.as_bytes(), chrono::Utc::now().timestamp(), &body);
    let sent = client
        .post(&ty.url)
        .timeout(Duration::from_secs_f64(ty.timeout))
        .header(CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header("Celeriac-Task-Id", ctx.task_id().to_string())
        .body(body)
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(e) => return Err(transport_error(&e, ty)),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let limit = if status.is_success() { ty.max_answer_bytes } else { BODY_EXCERPT };
    let mut answer = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if answer.len() + chunk.len() > limit {
                    if status.is_success() {
                        return Err(TaskError::permanent(format!(
                            "the answer is larger than the {} bytes this task type accepts",
                            ty.max_answer_bytes
                        ))
                        .with_kind("AnswerTooLarge"));
                    }
                    answer.extend_from_slice(&chunk[..limit - answer.len()]);
                    break;
                }
                answer.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(transport_error(&e, ty)),
        }
    }
    classify(status, retry_after, &answer)
}

/// The outcome of an answer: its status, its `Retry-After` (seconds) and its body (whole for
/// a success, the first [`BODY_EXCERPT`] bytes otherwise).
pub(super) fn classify(status: StatusCode, retry_after: Option<u64>, body: &[u8]) -> Result<String, TaskError> {
    if status.is_success() {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok("null".into());
        }
        return match serde_json::from_slice::<Value>(body) {
            Ok(value) => Ok(serde_json::to_string(&value).expect("a JSON value serializes")),
            Err(e) => Err(TaskError::permanent(format!("the answer ({status}) is not JSON: {e}")).with_kind("InvalidAnswer")),
        };
    }
    let excerpt = String::from_utf8_lossy(&body[..body.len().min(BODY_EXCERPT)]).into_owned();
    let message = format!("HTTP {}: {excerpt}", status.as_u16());
    let retryable = status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
    if retryable {
        let error = TaskError::retryable(message).with_kind("HttpStatus");
        Err(match retry_after {
            Some(secs) => error.with_retry_after(secs),
            None => error,
        })
    } else {
        Err(TaskError::permanent(message).with_kind("HttpStatus"))
    }
}

/// A call that got no answer: retryable (the endpoint may be back on the next attempt).
fn transport_error(e: &reqwest::Error, ty: &RemoteTaskType) -> TaskError {
    if e.is_timeout() {
        TaskError::retryable(format!("no answer within {}s", ty.timeout)).with_kind("Timeout")
    } else if e.is_connect() {
        TaskError::retryable(format!("cannot connect to the task's endpoint: {e}")).with_kind("ConnectionFailed")
    } else {
        TaskError::retryable(format!("the call failed: {e}")).with_kind("HttpError")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_class_gets_its_retry_decision() {
        assert_eq!(classify(StatusCode::OK, None, b"{\"a\": 1}"), Ok("{\"a\":1}".into()));
        assert_eq!(classify(StatusCode::NO_CONTENT, None, b""), Ok("null".into()));
        assert_eq!(classify(StatusCode::OK, None, b"<html>").unwrap_err().kind, "InvalidAnswer");
        for retryable in [408, 429, 500, 502, 503, 504] {
            let e = classify(StatusCode::from_u16(retryable).unwrap(), None, b"busy").unwrap_err();
            assert!(e.retryable, "{retryable}");
            assert_eq!(e.message, format!("HTTP {retryable}: busy"));
        }
        for permanent in [301, 400, 401, 403, 404, 409, 422] {
            let e = classify(StatusCode::from_u16(permanent).unwrap(), Some(5), b"no").unwrap_err();
            assert!(!e.retryable, "{permanent}");
            assert_eq!(e.retry_after, None);
        }
        let e = classify(StatusCode::TOO_MANY_REQUESTS, Some(7), b"").unwrap_err();
        assert_eq!(e.retry_after, Some(7));
    }
}
