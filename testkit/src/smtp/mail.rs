//! A message as the sink received it, with just enough MIME reading for assertions: header
//! lookup with unfolding, the Subject with RFC 2047 encoded words decoded, and the body of a
//! single-part message with its quoted-printable or base64 transfer encoding undone.

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
        header(split(&self.data).0, name)
    }

    /// The decoded Subject, or "" when there is none.
    pub fn subject(&self) -> String {
        self.header("Subject").map(|s| decode_words(&s)).unwrap_or_default()
    }

    /// The text after the blank line, transfer encoding undone and line breaks as `\n`.
    /// The line break ending the last line belongs to the SMTP framing and is left out, so a
    /// body sent by lettre comes back exactly as given. Assumes a single-part UTF-8 body.
    pub fn body(&self) -> String {
        let (head, raw) = split(&self.data);
        let raw = raw.strip_suffix("\r\n").or_else(|| raw.strip_suffix('\n')).unwrap_or(raw);
        let encoding = header(head, "Content-Transfer-Encoding").unwrap_or_default().to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "quoted-printable" => quoted_printable(raw, false),
            "base64" => base64(raw).unwrap_or_else(|| raw.as_bytes().to_vec()),
            _ => raw.as_bytes().to_vec(),
        };
        String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
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

/// Headers and body, split at the first blank line.
fn split(data: &str) -> (&str, &str) {
    let crlf = data.find("\r\n\r\n").map(|i| (i, i + 4));
    let lf = data.find("\n\n").map(|i| (i, i + 2));
    match crlf.into_iter().chain(lf).min() {
        Some((end, start)) => (&data[..end], &data[start..]),
        None => (data, ""),
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    let mut found: Option<String> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            // A folded continuation: it belongs to the header before it.
            if let Some(value) = found.as_mut() {
                value.push_str(line);
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        if let Some((key, value)) = line.split_once(':')
            && key.trim().eq_ignore_ascii_case(name)
        {
            found = Some(value.to_owned());
        }
    }
    found.map(|v| v.trim().to_owned())
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`); the whitespace
/// between two adjacent encoded words is dropped, as the RFC says.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        match encoded_word(candidate) {
            Some((text, used)) => {
                if !(after_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &candidate[used..];
                after_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes the encoded word at the start of `s`: its text and the bytes it used.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let text = &rest[..rest.find("?=")?];
    if text.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => base64(text)?,
        "Q" | "q" => quoted_printable(text, true),
        _ => return None,
    };
    let decoded = if charset.eq_ignore_ascii_case("iso-8859-1") {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some((decoded, 2 + charset.len() + 1 + encoding.len() + 1 + text.len() + 2))
}

/// Undoes quoted-printable (RFC 2045): `=XX` escapes and `=` soft line breaks. With
/// `q_word` it is the Q encoding of headers, where `_` stands for a space.
fn quoted_printable(text: &str, q_word: bool) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes[i + 1..].starts_with(b"\r\n") => i += 3,
            b'=' if bytes[i + 1..].starts_with(b"\n") => i += 2,
            b'=' => match bytes.get(i + 1..i + 3).and_then(hex_byte) {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                // Not an escape: keep the `=` as it is, as decoders are told to.
                None => {
                    out.push(b'=');
                    i += 1;
                }
            },
            b'_' if q_word => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(pair).ok()?;
    u8::from_str_radix(text, 16).ok()
}

/// Standard base64 (RFC 4648), ignoring line breaks and stopping at padding.
fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
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
