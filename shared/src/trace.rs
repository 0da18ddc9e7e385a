//! W3C Trace Context (`traceparent`) carried by a task: the gateway validates the header a
//! client sent with its enqueue and stores it with the task (or, when spans are exported, the
//! context of its own enqueue span, a child of that header's); the worker continues the trace,
//! so a run's log lines carry the caller's `trace_id` and a span id of their own, and its
//! exported spans join the caller's trace.

use std::fmt;

/// A validated `traceparent`: `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`,
/// lowercase, ids not all zeros (<https://www.w3.org/TR/trace-context/#traceparent-header>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: String,
    span_id: String,
    flags: String,
}

impl TraceParent {
    /// Parses a header value; `None` for anything but version `00` in the exact format (an
    /// invalid header is ignored, as the specification asks, never an error).
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let mut parts = raw.split('-');
        let (version, trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        let valid = parts.next().is_none()
            && version == "00"
            && hex(trace_id, 32)
            && !zero(trace_id)
            && hex(span_id, 16)
            && !zero(span_id)
            && hex(flags, 2);
        valid.then(|| Self {
            trace_id: trace_id.to_owned(),
            span_id: span_id.to_owned(),
            flags: flags.to_owned(),
        })
    }

    /// The same trace, with a new span id: the context of a run that continues this one.
    pub fn child(&self) -> Self {
        let span = loop {
            let id = fastrand::u64(..);
            if id != 0 {
                break id;
            }
        };
        Self {
            trace_id: self.trace_id.clone(),
            span_id: format!("{span:016x}"),
            flags: self.flags.clone(),
        }
    }

    /// 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// 16 lowercase hex digits: the span this context stands for.
    pub fn span_id(&self) -> &str {
        &self.span_id
    }

    /// 2 hex digits (`01`: sampled).
    pub fn flags(&self) -> &str {
        &self.flags
    }
}

/// The bridge to OpenTelemetry, for the spans exported when `[telemetry] otlp_endpoint` is set
/// (`telemetry.rs`): a stored context becomes a span's parent, and a span's own context
/// becomes what a task stores, so the exported spans of an HTTP request, its enqueue and the
/// task's run form one trace.
impl TraceParent {
    /// This context as an OpenTelemetry parent (a span in another process).
    pub fn to_context(&self) -> opentelemetry::Context {
        use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
        let flags = u8::from_str_radix(&self.flags, 16).unwrap_or(0);
        let span = SpanContext::new(
            TraceId::from_hex(&self.trace_id).unwrap_or(TraceId::INVALID),
            SpanId::from_hex(&self.span_id).unwrap_or(SpanId::INVALID),
            TraceFlags::new(flags),
            true,
            TraceState::default(),
        );
        opentelemetry::Context::new().with_remote_span_context(span)
    }

    /// Makes `span` a child of this context in the exported trace (nothing without an exporter).
    pub fn parent_of(&self, span: &tracing::Span) {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let _ = span.set_parent(self.to_context());
    }

    /// The context `span` has in the exported trace; `None` when no span is exported.
    pub fn of_span(span: &tracing::Span) -> Option<Self> {
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        if !crate::telemetry::exporting() {
            return None;
        }
        let context = span.context();
        let own = context.span();
        let own = own.span_context();
        own.is_valid().then(|| Self {
            trace_id: own.trace_id().to_string(),
            span_id: own.span_id().to_string(),
            flags: format!("{:02x}", own.trace_flags().to_u8()),
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_header_round_trips() {
        let tp = TraceParent::parse(VALID).unwrap();
        assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.span_id(), "00f067aa0ba902b7");
        assert_eq!(tp.flags(), "01");
        assert_eq!(tp.to_string(), VALID);
    }

    #[test]
    fn invalid_headers_are_refused() {
        for bad in [
            "",
            "garbage",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bg-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags_with_a_new_span() {
        let parent = TraceParent::parse(VALID).unwrap();
        let child = parent.child();
        assert_eq!((child.trace_id(), child.flags()), (parent.trace_id(), parent.flags()));
        assert_ne!(child.span_id(), parent.span_id());
        assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
    }
}
