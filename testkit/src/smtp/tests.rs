//! The sink driven over a real socket with hand-written SMTP, so each reply code is checked.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::SmtpSink;

/// A raw SMTP client: sends a line, returns the whole (possibly multi-line) reply.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn connect(sink: &SmtpSink) -> (Self, String) {
        let (read, writer) = TcpStream::connect(sink.addr()).await.unwrap().into_split();
        let mut client = Self {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = client.reply().await;
        (client, greeting)
    }

    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).await.unwrap() > 0, "connection closed");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all.trim_end().to_owned();
            }
        }
    }

    async fn send(&mut self, line: &str) -> String {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
        self.reply().await
    }
}

#[tokio::test]
async fn a_whole_conversation() {
    let sink = SmtpSink::start().await;
    let (mut c, greeting) = Client::connect(&sink).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    assert_eq!(c.send("MAIL FROM:<a@b.c>").await, "503 5.5.1 Error: send HELO/EHLO first");
    let ehlo = c.send("EHLO client.test").await;
    assert!(ehlo.contains("250-8BITMIME") && ehlo.contains("SIZE "), "{ehlo}");
    assert_eq!(c.send("RCPT TO:<x@y.z>").await, "503 5.5.1 Error: need MAIL command");
    assert_eq!(c.send("MAIL FROM:<sender@example.com> BODY=8BITMIME").await, "250 2.1.0 Ok");
    assert_eq!(c.send("DATA").await, "503 5.5.1 Error: need RCPT command");
    assert_eq!(c.send("RCPT TO:<ada@example.com>").await, "250 2.1.5 Ok");
    let refused = c.send("RCPT TO:<bob@reject.test>").await;
    assert_eq!(refused, "550 5.1.1 <bob@reject.test>: Recipient address rejected");
    assert_eq!(c.send("RCPT TO:<grace@example.com>").await, "250 2.1.5 Ok");
    assert!(c.send("DATA").await.starts_with("354 "));
    let queued = c.send("Subject: Hi\r\n\r\n..dotted\r\nlast\r\n.").await;
    let id = queued.strip_prefix("250 2.0.0 Ok: queued as ").expect(&queued).to_owned();
    assert_eq!(c.send("NOOP").await, "250 2.0.0 Ok");
    assert_eq!(c.send("VRFY ada").await, "502 5.5.2 Error: command not recognized");
    assert_eq!(c.send("QUIT").await, "221 2.0.0 Bye");

    let mails = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "sender@example.com");
    assert_eq!(mail.to, ["ada@example.com", "grace@example.com"]);
    assert_eq!(mail.queue_id, id);
    assert_eq!(mail.subject(), "Hi");
    assert_eq!(mail.body(), ".dotted\nlast");
}

#[tokio::test]
async fn rset_drops_the_envelope_and_ids_are_fresh() {
    let sink = SmtpSink::start().await;
    let (mut c, _) = Client::connect(&sink).await;
    c.send("HELO client.test").await;
    c.send("MAIL FROM:<a@b.c>").await;
    c.send("RCPT TO:<d@e.f>").await;
    assert_eq!(c.send("RSET").await, "250 2.0.0 Ok");
    assert_eq!(c.send("DATA").await, "503 5.5.1 Error: need RCPT command");
    let mut ids = Vec::new();
    for n in 0..2 {
        c.send("MAIL FROM:<>").await;
        c.send("RCPT TO:<d@e.f>").await;
        c.send("DATA").await;
        ids.push(c.send(&format!("Subject: {n}\r\n\r\nbody\r\n.")).await);
    }
    assert_ne!(ids[0], ids[1]);
    let mails = sink.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(mails.iter().map(|m| m.subject()).collect::<Vec<_>>(), ["0", "1"]);
    assert_eq!(mails[0].from, "");
}

#[tokio::test]
async fn wait_for_returns_what_arrived_when_time_is_up() {
    let sink = SmtpSink::start().await;
    let started = tokio::time::Instant::now();
    assert!(sink.wait_for(1, Duration::from_millis(50)).await.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[tokio::test]
async fn a_maildir_gets_one_file_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let sink = SmtpSink::start_on(0, Some(maildir.clone())).await.unwrap();
    let (mut c, _) = Client::connect(&sink).await;
    c.send("EHLO client.test").await;
    c.send("MAIL FROM:<a@b.c>").await;
    c.send("RCPT TO:<d@e.f>").await;
    c.send("DATA").await;
    c.send("Subject: Saved\r\n\r\nkept\r\n.").await;
    let mails = sink.wait_for(1, Duration::from_secs(5)).await;
    let saved = std::fs::read_to_string(maildir.join(format!("{}.eml", mails[0].queue_id))).unwrap();
    assert_eq!(saved, mails[0].data);
}

#[tokio::test]
async fn dropping_the_sink_stops_it() {
    let sink = SmtpSink::start().await;
    let addr = sink.addr();
    let (mut c, _) = Client::connect(&sink).await;
    drop(sink);
    // The open session ends with the sink, and nobody listens any more.
    let mut rest = String::new();
    assert_eq!(c.reader.read_line(&mut rest).await.unwrap_or(0), 0);
    assert!(TcpStream::connect(addr).await.is_err());
}
