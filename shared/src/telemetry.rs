//! Logging and tracing setup shared by every binary: log lines as human-readable text or JSON,
//! filtered by the settings or `RUST_LOG` (either way a line carries the fields of the spans it
//! happens in, so every line of a task's run carries its `task_id`, and `trace_id` when it has
//! one); and, when `[telemetry] otlp_endpoint` is set, the same spans exported to an
//! OpenTelemetry collector over OTLP (`otlp.rs`): the gateway's request and enqueue, a task's
//! time in its queue and its run, joined into one trace by the `traceparent` each task carries
//! (`trace.rs`).

mod otlp;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::{LogSettings, TelemetrySettings};

/// Whether this process exports spans (set once by [`init`]).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported: callers skip building spans that only the exporter reads.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// What [`init`] set up; [`Telemetry::shutdown`] sends the spans not exported yet.
#[must_use = "call shutdown() before exiting, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is left (waiting at most a few seconds) and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "the last spans could not be exported");
        }
    }
}

/// Installs the global subscriber once (later calls, in tests, change nothing); with an OTLP
/// endpoint, also the exporter, naming the process `service`. Call it on the tokio runtime.
pub fn init(settings: &LogSettings, telemetry: &TelemetrySettings, service: &str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    // Colours only on a terminal: a log file or collector gets plain text (and the process
    // spares the escape codes, which cost a worker more than its no-op tasks).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let (provider, error) = match telemetry.otlp_endpoint.as_deref().map(|e| otlp::provider(e, service)) {
        Some(Ok(provider)) => (Some(provider), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let tracer = provider.as_ref().map(|p| p.tracer("celeriac"));
    let installed = subscriber_with(filter, settings.format == "json", std::io::stdout, ansi, tracer)
        .try_init()
        .is_ok();
    if let Some(e) = error {
        tracing::error!(error = %e, "spans are not exported");
    }
    let provider = provider.filter(|_| installed);
    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
        EXPORTING.store(true, Ordering::Relaxed);
    }
    Telemetry { provider }
}

/// The subscriber [`init`] installs without an exporter, writing to `writer` (tests pass
/// testkit's `LogCapture`). A JSON line holds the event's fields at the top level, the
/// innermost span's fields under `span` and every enclosing span's under `spans`.
pub fn subscriber<W>(filter: EnvFilter, json: bool, writer: W, ansi: bool) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    subscriber_with(filter, json, writer, ansi, None)
}

/// [`subscriber`], with the spans also sent to `tracer` when there is one. Without one, the
/// log filter is the whole subscriber's: a span or event it leaves out is never built (a
/// worker's `task` span at a `warn` log costs nothing). With one, `filter` applies to the log
/// lines only and the exporter takes every `info` span, so a quiet log still exports whole
/// traces.
fn subscriber_with<W>(
    filter: EnvFilter,
    json: bool,
    writer: W,
    ansi: bool,
    tracer: Option<SdkTracer>,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let registry = tracing_subscriber::registry();
    match tracer {
        // The filter as a layer of its own, below the lines: it is the whole subscriber's.
        None => Box::new(registry.with(filter).with(log_lines(json, writer, ansi))),
        Some(tracer) => {
            let logs = log_lines(json, writer, ansi).with_filter(filter);
            let exporter = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
            Box::new(registry.with(logs).with(exporter))
        }
    }
}

/// The log lines, text or JSON (the event's fields at the top level, the innermost span's
/// under `span`, every enclosing span's under `spans`), to `writer`.
fn log_lines<S, W>(json: bool, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let lines = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(writer);
    if json {
        lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .boxed()
    } else {
        lines.boxed()
    }
}

#[cfg(test)]
mod tests {
    use celeriac_testkit::LogCapture;

    use super::*;

    fn log_in_a_task_span(json: bool) -> String {
        let buffer = LogCapture::default();
        let subscriber = subscriber(EnvFilter::new("info"), json, buffer.clone(), false);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("task", task_id = "default-0123", trace_id = "4bf92f3577b34da6a3ce929d0e0e4736");
            let _entered = span.enter();
            tracing::info!(answer = 42, "inside the run");
        });
        buffer.contents()
    }

    #[test]
    fn json_lines_carry_the_fields_of_their_spans() {
        let text = log_in_a_task_span(true);
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["message"], "inside the run");
        assert_eq!(line["answer"], 42);
        assert_eq!(line["span"]["task_id"], "default-0123", "{line}");
        assert_eq!(line["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{line}");
        assert_eq!(line["spans"][0]["task_id"], "default-0123", "{line}");
    }

    #[test]
    fn text_lines_carry_the_fields_of_their_spans() {
        let text = log_in_a_task_span(false);
        assert!(text.contains("task_id") && text.contains("\"default-0123\""), "{text}");
        assert!(!text.contains('\x1b'), "no colour codes off a terminal: {text:?}");
    }
}
