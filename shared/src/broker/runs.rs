//! Runs held outside a native worker's memory: the key that signs their tokens, whether a
//! token's run still holds its task (the fence of every write through a token), and crash
//! recovery of a queue's expired leases, which native workers' reapers and the gateway's pull
//! protocol (for queues that only pull workers serve) both run.

use redis::AsyncCommands;

use super::WorkerInfo;
use super::{Broker, BrokerError};
use crate::id::QueueName;
use crate::run_token::RunToken;

impl Broker {
    /// The namespace's run-token key: made at random by the first process that asks, then
    /// the same for every gateway and worker of the namespace.
    pub async fn run_secret(&self) -> Result<Vec<u8>, BrokerError> {
        let key = self.keys.run_secret();
        let mut conn = self.conn.clone();
        let mut fresh = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut fresh)
            .map_err(|_| BrokerError::Protocol("the system has no random source".into()))?;
        let _: bool = redis::cmd("SET")
            .arg(&key)
            .arg(crate::signing::hex(&fresh))
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await?
            .is_some();
        let secret: String = conn.get(&key).await?;
        Ok(secret.into_bytes())
    }

    /// Whether the run `token` names still holds its task: the task is leased to the token's
    /// worker for the token's delivery. A write through a token that fails this is refused.
    pub async fn run_holds(&self, token: &RunToken) -> Result<bool, BrokerError> {
        let held: Option<String> = self
            .conn
            .clone()
            .hget(self.keys.inflight(token.id.queue(), &token.worker), token.id.suffix())
            .await?;
        let delivery = token.delivery.to_string();
        // The token is '<flags><delivery>' (start.lua): flags 'c' and 'w' before the number.
        Ok(held.is_some_and(|h| h.trim_start_matches(['c', 'w']) == delivery))
    }

    /// Puts back the tasks of every worker whose lease on `queue` expired (but `except`, the
    /// caller's own id). Returns how many tasks went back.
    pub async fn recover_expired_on(&self, queue: &QueueName, except: Option<&str>) -> Result<usize, BrokerError> {
        let mut recovered = 0;
        for worker in self.expired_leases(queue).await? {
            if Some(worker.as_str()) == except {
                continue;
            }
            if let Some(n) = self.recover_expired(queue, &worker).await? {
                if n > 0 {
                    tracing::warn!(queue = %queue, dead_worker = %worker, tasks = n, "recovered tasks of a worker whose lease expired");
                }
                recovered += n;
            }
        }
        Ok(recovered)
    }

    /// One worker's registry entry, if it is there.
    pub async fn worker_info(&self, worker: &str) -> Result<Option<WorkerInfo>, BrokerError> {
        Ok(self.worker_infos(&[worker.to_owned()]).await?.pop())
    }

    /// Counts a run ended by a worker over HTTP in its registry entry (processed, and failed
    /// for good when `failed`). Descriptive, like the entry: two writes at once may lose one.
    pub async fn count_pull_run(&self, worker: &str, failed: bool) -> Result<(), BrokerError> {
        let Some(mut info) = self.worker_info(worker).await? else {
            return Ok(());
        };
        info.processed += 1;
        info.failed += u64::from(failed);
        let json = serde_json::to_string(&info).expect("worker info serializes");
        redis::cmd("SET")
            .arg(self.keys.worker_info(worker))
            .arg(json)
            .arg("KEEPTTL")
            .query_async::<()>(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}
