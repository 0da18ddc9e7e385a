//! `SmtpSink`: a small SMTP server on 127.0.0.1 that accepts every message and keeps it, for
//! tests (deliver with the real client, then look at what arrived) and as the local
//! development mail server. It can also save each message as `<queue id>.eml` in a folder.
//!
//! Recipients under `@reject.test` are refused with a 550, so tests can prove that a refusal
//! reaches the sender. The protocol itself lives in `smtp/session.rs`, the parsed view of a
//! message in `smtp/mail.rs`.

mod mail;
mod session;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

pub use mail::ReceivedMail;

/// A running sink. It stops listening, and drops its open sessions, when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    mailbox: Arc<Mailbox>,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("addr", &self.addr)
            .field("maildir", &self.mailbox.maildir)
            .finish()
    }
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1 that keeps messages in memory only.
    ///
    /// # Panics
    /// When no loopback port can be bound, which leaves a test nothing to do.
    pub async fn start() -> Self {
        Self::start_on(0, None).await.expect("bind an SMTP sink on 127.0.0.1")
    }

    /// Starts a sink on `port` of 127.0.0.1 (0: a free one). With a `maildir`, each message is
    /// also written there as `<queue id>.eml` and summarised on one line of stdout.
    pub async fn start_on(port: u16, maildir: Option<PathBuf>) -> io::Result<Self> {
        Self::start_at(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), maildir).await
    }

    /// Like [`SmtpSink::start_on`], on any address (a container listens on 0.0.0.0).
    pub async fn start_at(addr: SocketAddr, maildir: Option<PathBuf>) -> io::Result<Self> {
        if let Some(dir) = &maildir {
            tokio::fs::create_dir_all(dir).await?;
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let mailbox = Arc::new(Mailbox {
            messages: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            maildir,
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&mailbox)));
        Ok(Self { addr, mailbox, accept })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.mailbox.lock().clone()
    }

    /// Waits until at least `n` messages have arrived or `timeout` has passed, and returns all
    /// received so far (fewer than `n` on timeout, so the caller's assertion says what is missing).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before looking, so a message delivered in between still wakes us.
            let arrived = self.mailbox.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            {
                let messages = self.mailbox.lock();
                if messages.len() >= n {
                    return messages.clone();
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.messages();
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// What the sessions share: the received messages and who is waiting for them.
struct Mailbox {
    messages: Mutex<Vec<ReceivedMail>>,
    arrived: Notify,
    /// Where each message is also saved, when the sink runs as a development server.
    maildir: Option<PathBuf>,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, Vec<ReceivedMail>> {
        // A panic while holding this lock leaves a plain Vec intact, so poisoning is harmless.
        self.messages.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps a message (after saving it, so a woken test also finds the file).
    async fn deliver(&self, mail: ReceivedMail) {
        if let Some(dir) = &self.maildir {
            let path = dir.join(format!("{}.eml", mail.queue_id));
            match tokio::fs::write(&path, mail.data.as_bytes()).await {
                Ok(()) => println!("{}", mail.summary()),
                Err(e) => eprintln!("smtp sink: cannot write {}: {e}", path.display()),
            }
        }
        self.lock().push(mail);
        self.arrived.notify_waiters();
    }
}

/// Accepts connections until aborted; aborting drops the `JoinSet`, which ends every session.
async fn accept_loop(listener: TcpListener, mailbox: Arc<Mailbox>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    sessions.spawn(session::serve(stream, Arc::clone(&mailbox)));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    eprintln!("smtp sink: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next() => {}
        }
    }
}

#[cfg(test)]
mod tests;
