//! Logging setup shared by every binary: human-readable text or JSON lines, filtered by the
//! settings or `RUST_LOG`. Either way a line carries the fields of the spans it happens in, so
//! every line of a task's run carries its `task_id` (and `trace_id` when it has one).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::LogSettings;

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    // Colours only on a terminal: a log file or collector gets plain text (and the process
    // spares the escape codes, which cost a worker more than its no-op tasks).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let _ = subscriber(filter, settings.format == "json", std::io::stdout, ansi).try_init();
}

/// The subscriber [`init`] installs, writing to `writer` (tests pass testkit's `LogCapture`). A JSON line holds the event's fields
/// at the top level, the innermost span's fields under `span` and every enclosing span's
/// under `spans`.
pub fn subscriber<W>(filter: EnvFilter, json: bool, writer: W, ansi: bool) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(writer);
    if json {
        Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .finish(),
        )
    } else {
        Box::new(builder.finish())
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
