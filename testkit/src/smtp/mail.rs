//! A message as the sink received it, read with `mail-parser` for assertions: header lookup
//! with unfolding, the Subject with RFC 2047 encoded words decoded, and the text body with its
//! quoted-printable or base64 transfer encoding and its charset undone.

use mail_parser::{Message, MessageParser};

/// One message: its envelope, the raw message text and the id the sink answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The MAIL FROM address (empty for the null sender `<>`).
    pub from: String,
    /// The accepted RCPT TO addresses.
    pub to: Vec<String>,
    /// The message as sent after DATA (headers, blank line, body), dot-stuffing undone.
    pub data: String,
    /// The id in `250 2.0.0 Ok: queued as <id>`, and the file name in a maildir.
    pub queue_id: String,
}

impl ReceivedMail {
    /// The first header called `name` (any case), unfolded and trimmed, still encoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let raw = self.parsed()?.header_raw(name)?.replace("\r\n", "").replace('\n', "");
        Some(raw.trim().to_owned())
    }

    /// The decoded Subject, or "" when there is none.
    pub fn subject(&self) -> String {
        self.parsed().and_then(|m| m.subject().map(str::to_owned)).unwrap_or_default()
    }

    /// The text body, transfer encoding undone and line breaks as `\n`. The line break ending
    /// the last line of a quoted-printable or plain body belongs to the SMTP framing and is left
    /// out, so a body sent by lettre comes back exactly as given.
    pub fn body(&self) -> String {
        let Some(message) = self.parsed() else {
            return String::new();
        };
        let text = message.body_text(0).unwrap_or_default().replace("\r\n", "\n");
        let base64 = self
            .header("Content-Transfer-Encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("base64"));
        match text.strip_suffix('\n') {
            Some(framed) if !base64 => framed.to_owned(),
            _ => text,
        }
    }

    /// The message parsed; `None` only for data with no header at all.
    fn parsed(&self) -> Option<Message<'_>> {
        MessageParser::default().parse(self.data.as_bytes())
    }

    /// One line for logs: envelope, subject, queue id and size.
    pub fn summary(&self) -> String {
        format!(
            "from=<{}> to=<{}> subject={:?} queue_id={} size={}",
            self.from,
            self.to.join(">,<"),
            self.subject(),
            self.queue_id,
            self.data.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(data: &str) -> ReceivedMail {
        ReceivedMail {
            from: "a@b.c".into(),
            to: vec!["d@e.f".into()],
            data: data.into(),
            queue_id: "Q1".into(),
        }
    }

    #[test]
    fn subject_is_unfolded_and_decoded() {
        let m = mail("From: a@b.c\r\nSubject: Hello\r\n there\r\n\r\nbody\r\n");
        assert_eq!(m.subject(), "Hello there");
        let m = mail("Subject: =?utf-8?b?Q2Fmw6k=?= =?utf-8?q?_cr=C3=A8me?= ok\r\n\r\n");
        assert_eq!(m.subject(), "Café crème ok");
        assert_eq!(mail("X: y\r\n\r\n").subject(), "");
    }

    #[test]
    fn body_undoes_transfer_encodings() {
        let qp = mail("Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 and a long=\r\n line\r\nnext\r\n");
        assert_eq!(qp.body(), "Café and a long line\nnext");
        let b64 = mail("Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8s\r\nIHdvcmxk\r\n");
        assert_eq!(b64.body(), "Hello, world");
        assert_eq!(mail("Subject: s\r\n\r\nplain = text\r\n\r\n").body(), "plain = text\n");
    }

    #[test]
    fn summary_names_envelope_and_subject() {
        let line = mail("Subject: Hi\r\n\r\nx\r\n").summary();
        assert_eq!(line, "from=<a@b.c> to=<d@e.f> subject=\"Hi\" queue_id=Q1 size=18");
    }
}
