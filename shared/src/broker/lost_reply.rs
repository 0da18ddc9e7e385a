//! Answers lost on their way back. A connection that breaks (or times out) after a request
//! was sent leaves it unknown whether Redis ran it. A write that can tell "done now" from
//! "found done" (an enqueue, a workflow's creation) is then simply sent again: answering
//! "failed" would show an outage for work that runs, and the caller's own retry would run it
//! twice.

use std::future::Future;
use std::time::Duration;

use super::BrokerError;

/// How long to wait before each new attempt after a lost answer (then the caller gives up).
const WAITS: [Duration; 3] = [Duration::from_millis(50), Duration::from_millis(200), Duration::from_millis(500)];

/// Runs `attempt` until it gets an answer, sending it again up to three more times while the
/// answer may have been lost. `attempt` is told whether it was sent before, so that it can
/// read "this exists already" as "my earlier attempt stored it". `what` and `on` (a queue, a
/// workflow) name it in the log.
pub(super) async fn ask_until_answered<T, F, Fut>(
    what: &'static str,
    on: &(dyn std::fmt::Display + Sync),
    mut attempt: F,
) -> Result<T, BrokerError>
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = Result<T, BrokerError>>,
{
    let mut waits = WAITS.iter();
    let mut sent_before = false;
    loop {
        match attempt(sent_before).await {
            Err(BrokerError::Redis(e)) if reply_may_be_lost(&e) => {
                let Some(wait) = waits.next() else {
                    return Err(BrokerError::Redis(e));
                };
                tracing::warn!(on = %on, error = %e, "{what}: the answer was lost; asking again");
                sent_before = true;
                tokio::time::sleep(*wait).await;
            }
            other => return other,
        }
    }
}

/// Whether the request may have reached Redis and run, with its reply lost on the way back:
/// a broken connection or a timeout; not an error Redis answered, nor a refused connection
/// (nothing was sent: the outage is answered at once).
fn reply_may_be_lost(e: &redis::RedisError) -> bool {
    !e.is_connection_refusal() && (e.is_io_error() || e.is_timeout() || e.is_connection_dropped())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_answer_that_may_have_been_lost_is_asked_again() {
        use std::io::{Error, ErrorKind};
        let io = |kind| redis::RedisError::from(Error::new(kind, "test"));
        assert!(reply_may_be_lost(&io(ErrorKind::BrokenPipe)));
        assert!(reply_may_be_lost(&io(ErrorKind::ConnectionReset)));
        assert!(reply_may_be_lost(&io(ErrorKind::TimedOut)));
        assert!(!reply_may_be_lost(&io(ErrorKind::ConnectionRefused)), "nothing was sent");
        let answered = redis::RedisError::from((redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError), "ERR oom"));
        assert!(!reply_may_be_lost(&answered), "Redis answered");
    }
}
