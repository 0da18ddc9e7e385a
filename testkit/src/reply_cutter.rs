//! A TCP proxy in front of a redis-server that loses replies on demand. Armed with a byte
//! pattern, it passes the next request containing it on to Redis, lets Redis run it, and then
//! either closes the client's connection instead of passing the answer back (a cut), or keeps
//! it open and passes no answer any more (a stall: the caller waits, as on a dead network):
//! the command ran, but its caller cannot know. Everything else is forwarded as is. For tests
//! of what a client does when a reply is lost, which a healthy local Redis never does.
//!
//! It can also hold a request back, unsent, until the test releases it: the caller is then
//! paused at a chosen step while others go on, to set up a race deterministically.
//!
//! The pattern is looked for in each chunk read from the client, so it must be short enough
//! to arrive in one read: a task name inside a command, not a whole payload.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long Redis is given to run the request before the client's connection is closed.
const RUN_TIME: Duration = Duration::from_millis(200);

pub struct ReplyCutter {
    port: u16,
    shared: Arc<Shared>,
}

/// What happens to the connection of the request whose reply is lost.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// Closed at once.
    Cut,
    /// Kept open, answering nothing any more.
    Stall,
}

#[derive(Default)]
struct Shared {
    /// The pattern of the next request whose reply is lost, and how; `None` when disarmed.
    armed: Mutex<Option<(Vec<u8>, Loss)>>,
    /// Requests whose reply was (or is being) lost so far.
    cuts: AtomicUsize,
    /// The pattern of the next request to hold back; `None` when disarmed.
    hold: Mutex<Option<Vec<u8>>>,
    /// Requests held back so far (released or not).
    held: AtomicUsize,
    /// Lets the held request go on (a permit, if it is not held yet).
    release: tokio::sync::Notify,
}

impl ReplyCutter {
    /// Listens on a free loopback port and forwards every connection to `upstream_port`.
    /// Call it inside a Tokio runtime, which runs the proxy.
    pub fn start(upstream_port: u16) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let port = listener.local_addr().expect("proxy address").port();
        let listener = TcpListener::from_std(listener).expect("inside a Tokio runtime");
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                    continue;
                };
                tokio::spawn(forward(client, server, Arc::clone(&accepting)));
            }
        });
        Self { port, shared }
    }

    /// The URL to give clients instead of the redis-server's.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Loses the reply to the next request that contains `pattern`, closing its connection.
    pub fn cut_reply_to(&self, pattern: &[u8]) {
        *self.shared.armed.lock().expect("proxy lock") = Some((pattern.to_vec(), Loss::Cut));
    }

    /// Loses the reply to the next request that contains `pattern`, and every later reply on
    /// its connection, which stays open: its caller waits until it gives up.
    pub fn stall_reply_to(&self, pattern: &[u8]) {
        *self.shared.armed.lock().expect("proxy lock") = Some((pattern.to_vec(), Loss::Stall));
    }

    /// Holds the next request that contains `pattern` back, unsent, until [`Self::release`].
    pub fn hold_request(&self, pattern: &[u8]) {
        *self.shared.hold.lock().expect("proxy lock") = Some(pattern.to_vec());
    }

    /// Resolves once a request is held back (panics after 10 s).
    pub async fn holding(&self) {
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.shared.held.load(Ordering::SeqCst) == 0 {
            assert!(tokio::time::Instant::now() < until, "no request was held within 10 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends the held request on.
    pub fn release(&self) {
        self.shared.release.notify_one();
    }

    /// How many requests had their reply lost so far.
    pub fn cuts(&self) -> usize {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Resolves once `count` replies in all have been lost and Redis has had the time to run
    /// the last request (panics after 10 s): race it against the call that should stall, so
    /// the call is dropped only once its request ran, however slow the machine.
    pub async fn lost(&self, count: usize) {
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.cuts() < count {
            assert!(tokio::time::Instant::now() < until, "no reply was lost within 10 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(RUN_TIME).await;
    }
}

/// One client connection: requests go up as they come; replies come down until a cut.
async fn forward(client: TcpStream, server: TcpStream, shared: Arc<Shared>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let cutting = Arc::new(AtomicBool::new(false));
    let replies_cut = Arc::clone(&cutting);
    let replies = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            // Once a reply is lost, none passes any more: a cut closes the connection (when
            // `forward` ends), a stall keeps it open and silent.
            if replies_cut.load(Ordering::SeqCst) {
                continue;
            }
            if client_tx.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client_rx.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if take_if_held(&shared, &buf[..n]) {
            shared.release.notified().await;
        }
        let loss = take_if_armed(&shared, &buf[..n]);
        if loss.is_some() {
            // Set before Redis can answer, so no byte of the answer reaches the client.
            cutting.store(true, Ordering::SeqCst);
        }
        if server_tx.write_all(&buf[..n]).await.is_err() {
            break;
        }
        if loss == Some(Loss::Cut) {
            tokio::time::sleep(RUN_TIME).await;
            break;
        }
    }
    // Dropping both halves closes the client's connection (and ours to Redis).
    replies.abort();
}

/// Whether `chunk` is the request to hold back; disarms when it is.
fn take_if_held(shared: &Shared, chunk: &[u8]) -> bool {
    let mut hold = shared.hold.lock().expect("proxy lock");
    let found = hold.as_ref().is_some_and(|pattern| contains(chunk, pattern));
    if found {
        *hold = None;
        shared.held.fetch_add(1, Ordering::SeqCst);
    }
    found
}

/// How the reply to `chunk` is lost, if it holds the armed pattern; disarms when it does.
fn take_if_armed(shared: &Shared, chunk: &[u8]) -> Option<Loss> {
    let mut armed = shared.armed.lock().expect("proxy lock");
    let loss = armed
        .as_ref()
        .filter(|(pattern, _)| contains(chunk, pattern))
        .map(|(_, loss)| *loss);
    if loss.is_some() {
        *armed = None;
        shared.cuts.fetch_add(1, Ordering::SeqCst);
    }
    loss
}

fn contains(chunk: &[u8], pattern: &[u8]) -> bool {
    chunk.windows(pattern.len()).any(|w| w == pattern)
}
