//! The gateway over HTTP: one client with the base URL and bearer token, requests built from
//! path segments (so an id or a queue name is escaped, never spliced), and every answer
//! turned into JSON or a [`CliError`] read from the gateway's `{"error": {"code", "message"}}`.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, Url};
use serde_json::Value;

use crate::error::{CliError, chain};

/// How long to wait for a TCP connection to the gateway.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A gateway to talk to.
#[derive(Debug, Clone)]
pub struct Gateway {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
    /// The limit of one request (not of an event stream, which lasts as long as its task).
    timeout: Duration,
}

impl Gateway {
    /// A client for `url` (`http://host:port`, optionally with a path prefix).
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Self, CliError> {
        let base = Url::parse(url).map_err(|e| CliError::Usage(format!("--url / CELERIAC_URL: {url:?} is not a URL ({e})")))?;
        match base.scheme() {
            "http" => {}
            "https" => {
                return Err(CliError::Usage(
                    "--url / CELERIAC_URL: this build of celeriac speaks plain http only; reach an https gateway through a local tunnel or proxy".into(),
                ));
            }
            other => return Err(CliError::Usage(format!("--url / CELERIAC_URL: scheme {other:?} is not http"))),
        }
        if base.cannot_be_a_base() {
            return Err(CliError::Usage(format!("--url / CELERIAC_URL: {url:?} cannot hold a path")));
        }
        // The process's TLS provider, as `celeriac::tls` installs it for the other binaries:
        // in a workspace build reqwest has TLS without a provider of its own.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| CliError::Unreachable(format!("cannot build an HTTP client: {}", chain(&e))))?;
        let token = token.filter(|t| !t.is_empty());
        Ok(Self {
            base,
            token,
            http,
            timeout,
        })
    }

    /// The gateway's base URL, as given.
    pub fn base(&self) -> &str {
        self.base.as_str()
    }

    /// The URL of `segments` under the base, each segment escaped.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the base can hold a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// A request with the bearer token, if any.
    pub fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.authorized(self.http.request(method, self.url(segments)))
    }

    fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Value, CliError> {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.send(self.authorized(self.http.get(url))).await
    }

    pub async fn post(&self, segments: &[&str], body: Option<&Value>) -> Result<Value, CliError> {
        let request = self.request(Method::POST, segments);
        self.send(match body {
            Some(body) => request.json(body),
            None => request,
        })
        .await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<Value, CliError> {
        self.send(self.request(Method::DELETE, segments)).await
    }

    /// Sends `request` with the per-request time limit and reads its JSON answer.
    pub async fn send(&self, request: RequestBuilder) -> Result<Value, CliError> {
        let response = request.timeout(self.timeout).send().await.map_err(|e| self.unreachable(&e))?;
        let response = checked(response).await?;
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| CliError::ServerError {
            status: 200,
            code: "bad_answer".into(),
            message: format!("the gateway's answer is not JSON ({e})"),
        })
    }

    /// Opens a long-lived request (an event stream): no overall time limit.
    pub async fn open(&self, request: RequestBuilder) -> Result<Response, CliError> {
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        checked(response).await
    }

    /// The one-line error for a request that got no answer.
    pub fn unreachable(&self, error: &reqwest::Error) -> CliError {
        let what = if error.is_timeout() {
            "no answer in time from"
        } else {
            "cannot reach"
        };
        CliError::Unreachable(format!("{what} the gateway at {}: {}", self.base, chain(error)))
    }
}

/// `response` if it is a success; otherwise the gateway's error, read from its body.
async fn checked(response: Response) -> Result<Response, CliError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<Value>(&text) {
        Ok(body) if body["error"]["code"].is_string() => error_line(&body["error"]),
        _ => {
            let first = text.lines().next().unwrap_or("").chars().take(200).collect::<String>();
            let reason = status.canonical_reason().unwrap_or("error");
            ("http_error".to_owned(), if first.is_empty() { reason.to_owned() } else { first })
        }
    };
    let status = status.as_u16();
    Err(if status >= 500 {
        CliError::ServerError { status, code, message }
    } else {
        CliError::Refused { status, code, message }
    })
}

/// The code and message of an `error` object, with the task names the gateway knows for an
/// unknown task (the message alone does not list them).
fn error_line(error: &Value) -> (String, String) {
    let code = error["code"].as_str().unwrap_or("error").to_owned();
    let mut message = error["message"].as_str().unwrap_or("").replace('\n', " ");
    if let Some(known) = error["known_tasks"].as_array() {
        let names: Vec<&str> = known.iter().filter_map(Value::as_str).collect();
        message.push_str(&format!(" (known: {})", names.join(", ")));
    }
    (code, message)
}
