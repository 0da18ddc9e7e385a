//! The OTLP exporter of [`super::init`]: spans batched and sent as OTLP/HTTP JSON to
//! `<endpoint>/v1/traces` through the workspace's reqwest client, run on the process's tokio
//! runtime (the SDK's batch processor exports from a thread of its own, outside the runtime,
//! so each call is spawned onto the runtime and awaited from there).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};

/// How long finished spans wait to be sent with others (the SDK's default is 5 s).
const EXPORT_DELAY: Duration = Duration::from_millis(500);

/// A tracer provider exporting to `endpoint` under the service name `service`; must be
/// called on a tokio runtime.
pub(super) fn provider(endpoint: &str, service: &str) -> Result<SdkTracerProvider, String> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| "the OTLP exporter needs a tokio runtime".to_owned())?;
    crate::tls::install_crypto_provider();
    let client = ReqwestOnTokio {
        client: reqwest::Client::new(),
        runtime,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_http_client(client)
        .build()
        .map_err(|e| format!("the OTLP exporter: {e}"))?;
    let batches = BatchConfigBuilder::default().with_scheduled_delay(EXPORT_DELAY).build();
    let processor = BatchSpanProcessor::builder(exporter).with_batch_config(batches).build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(Resource::builder().with_service_name(service.to_owned()).build())
        .build())
}

/// Sends the exporter's requests with reqwest on the runtime given.
#[derive(Debug)]
struct ReqwestOnTokio {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl HttpClient for ReqwestOnTokio {
    fn send_bytes<'s, 'f>(
        &'s self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'f>>
    where
        Self: 'f,
        's: 'f,
    {
        let client = self.client.clone();
        let call = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let answer = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = answer.status();
            let headers = answer.headers().clone();
            let body = answer.bytes().await?;
            let mut response = Response::builder().status(status).body(body)?;
            *response.headers_mut() = headers;
            Ok::<_, HttpError>(response)
        });
        Box::pin(async move { call.await.map_err(|e| Box::new(e) as HttpError)? })
    }
}
