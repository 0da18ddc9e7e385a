//! A Server-Sent Events reader, just what `GET /tasks/{id}/events` needs: bytes in as they
//! arrive (a chunk may end anywhere, even inside a character), whole events out, with their
//! `event`, `id` and `data` fields. Comments (the keep-alives) are skipped.

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `message` when the server sent none.
    pub kind: String,
    pub id: Option<String>,
    /// The `data:` lines, joined with line breaks.
    pub data: String,
}

/// Turns chunks of the stream into events.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes after the last complete line.
    partial: Vec<u8>,
    kind: Option<String>,
    id: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    /// Feeds a chunk; the events it completes, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.partial.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if let Some(event) = self.line(line) {
                events.push(event);
            }
        }
        events
    }

    /// One line of the stream; an empty line ends an event.
    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if self.data.is_empty() && self.kind.is_none() {
                return None;
            }
            return Some(SseEvent {
                kind: self.kind.take().unwrap_or_else(|| "message".into()),
                id: self.id.take(),
                data: std::mem::take(&mut self.data).join("\n"),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.kind = Some(value.to_owned()),
            "id" => self.id = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_read_whole() {
        let mut parser = SseParser::default();
        let stream = b": keep-alive\n\nevent: snapshot\nid: 3\ndata: {\"a\":\r\n\r\nevent: state\ndata: x\ndata: y\n\n";
        let mut events = Vec::new();
        for chunk in stream.chunks(5) {
            events.extend(parser.feed(chunk));
        }
        assert_eq!(
            events,
            vec![
                SseEvent {
                    kind: "snapshot".into(),
                    id: Some("3".into()),
                    data: "{\"a\":".into()
                },
                SseEvent {
                    kind: "state".into(),
                    id: None,
                    data: "x\ny".into()
                },
            ]
        );
    }
}
