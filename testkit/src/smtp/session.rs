//! One SMTP conversation (RFC 5321), as much of it as a sending client such as lettre uses:
//! EHLO/HELO, MAIL FROM, RCPT TO, DATA, RSET, NOOP and QUIT. Anything else gets a 502.
//! Lines are read with a length cap so a broken client cannot grow memory without bound.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{Mailbox, ReceivedMail};

/// The name the sink gives itself in replies.
const HOSTNAME: &str = "celeriac-smtp-sink";
/// Largest message accepted, announced in the EHLO reply as `SIZE`.
pub(super) const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
/// Longest line read in one piece (RFC 5321 allows 1000 bytes; be generous).
const MAX_LINE_BYTES: u64 = 64 * 1024;
/// The domain whose recipients are refused, so tests can provoke a permanent failure.
const REJECTED_DOMAIN: &str = "@reject.test";

/// The envelope being built between MAIL FROM and the end of DATA.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

/// Serves one connection until QUIT or until the client goes away.
pub(super) async fn serve(stream: TcpStream, mailbox: Arc<Mailbox>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(format!("220 {HOSTNAME} ESMTP ready\r\n").as_bytes()).await?;
    let mut greeted = false;
    let mut envelope = Envelope::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if (&mut reader).take(MAX_LINE_BYTES).read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            write.write_all(b"500 5.5.2 Error: line too long\r\n").await?;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = text.split_once(' ').unwrap_or((text, ""));
        let arg = arg.trim();
        let reply = match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if arg.is_empty() => format!("501 5.5.4 Syntax: {verb} hostname"),
            "EHLO" => {
                (greeted, envelope) = (true, Envelope::default());
                format!("250-{HOSTNAME} greets {arg}\r\n250-SIZE {MAX_MESSAGE_BYTES}\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES")
            }
            "HELO" => {
                (greeted, envelope) = (true, Envelope::default());
                format!("250 {HOSTNAME}")
            }
            "MAIL" if !greeted => "503 5.5.1 Error: send HELO/EHLO first".into(),
            "MAIL" if envelope.from.is_some() => "503 5.5.1 Error: nested MAIL command".into(),
            "MAIL" => match parse_path(arg, "FROM:") {
                None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
                Some((_, params)) if declared_size(params).is_some_and(|n| n > MAX_MESSAGE_BYTES) => {
                    "552 5.3.4 Error: message size exceeds fixed limit".into()
                }
                Some((from, _)) => {
                    envelope.from = Some(from);
                    "250 2.1.0 Ok".into()
                }
            },
            "RCPT" if envelope.from.is_none() => "503 5.5.1 Error: need MAIL command".into(),
            "RCPT" => match parse_path(arg, "TO:") {
                None => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
                Some((to, _)) if to.is_empty() => "501 5.1.3 Error: empty recipient address".into(),
                Some((to, _)) if to.to_ascii_lowercase().ends_with(REJECTED_DOMAIN) => {
                    format!("550 5.1.1 <{to}>: Recipient address rejected")
                }
                Some((to, _)) => {
                    envelope.to.push(to);
                    "250 2.1.5 Ok".into()
                }
            },
            "DATA" if envelope.to.is_empty() => "503 5.5.1 Error: need RCPT command".into(),
            "DATA" => {
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let Some(data) = read_data(&mut reader).await? else {
                    return Ok(());
                };
                let envelope = std::mem::take(&mut envelope);
                match data {
                    Err(TooBig) => "552 5.3.4 Error: message size exceeds fixed limit".into(),
                    Ok(data) => {
                        let queue_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase();
                        let data = String::from_utf8_lossy(&data).into_owned();
                        let from = envelope.from.unwrap_or_default();
                        let reply = format!("250 2.0.0 Ok: queued as {queue_id}");
                        mailbox
                            .deliver(ReceivedMail {
                                from,
                                to: envelope.to,
                                data,
                                queue_id,
                            })
                            .await;
                        reply
                    }
                }
            }
            "RSET" => {
                envelope = Envelope::default();
                "250 2.0.0 Ok".into()
            }
            "NOOP" => "250 2.0.0 Ok".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 Error: command not recognized".into(),
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

/// The message was larger than [`MAX_MESSAGE_BYTES`].
struct TooBig;

/// Reads message lines up to the lone `.` line, undoing dot-stuffing. `None` when the client
/// went away before the end. The line break ending the last line is kept, as servers store it.
async fn read_data<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<Result<Vec<u8>, TooBig>>> {
    let mut data = Vec::new();
    let mut chunk = Vec::new();
    let mut too_big = false;
    // Whether `chunk` starts a line: a line longer than the cap arrives in several chunks.
    let mut line_start = true;
    loop {
        chunk.clear();
        if (&mut *reader).take(MAX_LINE_BYTES).read_until(b'\n', &mut chunk).await? == 0 {
            return Ok(None);
        }
        if line_start && (chunk == b".\r\n" || chunk == b".\n") {
            return Ok(Some(if too_big { Err(TooBig) } else { Ok(data) }));
        }
        let content = if line_start && chunk.starts_with(b".") {
            &chunk[1..]
        } else {
            &chunk[..]
        };
        line_start = chunk.ends_with(b"\n");
        if too_big || data.len() + content.len() > MAX_MESSAGE_BYTES {
            too_big = true;
            data = Vec::new();
        } else {
            data.extend_from_slice(content);
        }
    }
}

/// Splits `FROM:<a@b> PARAM=1` (after the verb) into the address and the parameters.
/// The keyword is matched without regard to case; `<>` gives an empty address.
fn parse_path<'a>(arg: &'a str, keyword: &str) -> Option<(String, &'a str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let (address, params) = match rest.strip_prefix('<') {
        Some(inner) => inner.split_once('>')?,
        None => rest.split_once(' ').unwrap_or((rest, "")),
    };
    if address.contains(['<', '>', ' ']) {
        return None;
    }
    Some((address.to_owned(), params.trim()))
}

/// The `SIZE=n` parameter of MAIL FROM (RFC 1870), if given.
fn declared_size(params: &str) -> Option<usize> {
    params.split_whitespace().find_map(|p| {
        p.get(..5)
            .filter(|k| k.eq_ignore_ascii_case("SIZE="))
            .and_then(|_| p[5..].parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_parameters() {
        assert_eq!(parse_path("FROM:<a@b.c> SIZE=10", "FROM:"), Some(("a@b.c".into(), "SIZE=10")));
        assert_eq!(parse_path("from: <a@b.c>", "FROM:"), Some(("a@b.c".into(), "")));
        assert_eq!(parse_path("FROM:<>", "FROM:"), Some((String::new(), "")));
        assert_eq!(parse_path("TO:x@y.z", "TO:"), Some(("x@y.z".into(), "")));
        assert_eq!(parse_path("TO:<x@y.z", "TO:"), None);
        assert_eq!(parse_path("FROM:<a@b.c>", "TO:"), None);
        assert_eq!(declared_size("BODY=8BITMIME SIZE=2048"), Some(2048));
        assert_eq!(declared_size("BODY=8BITMIME"), None);
    }

    #[tokio::test]
    async fn data_is_unstuffed_and_ends_at_the_lone_dot() {
        let input: &[u8] = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nNOOP\r\n";
        let mut reader = BufReader::new(input);
        let data = read_data(&mut reader).await.unwrap().unwrap().ok().unwrap();
        assert_eq!(data, b"Subject: x\r\n\r\n.leading dot\r\n");
        let mut rest = String::new();
        reader.read_line(&mut rest).await.unwrap();
        assert_eq!(rest, "NOOP\r\n");
    }

    #[tokio::test]
    async fn data_cut_short_is_not_a_message() {
        let mut reader = BufReader::new(&b"Subject: x\r\n\r\nno end"[..]);
        assert!(read_data(&mut reader).await.unwrap().is_none());
    }
}
