//! Workflows in Redis. A workflow's plan and counters live in one hash under its own hash tag;
//! its members are ordinary tasks with deterministic ids (`TaskId::derived`), each carrying a
//! link back. When a member ends, the script that ends it also puts it in its queue's
//! workflow outbox; any worker then records it in the workflow (`wf_advance.lua`, atomic and
//! idempotent) and enqueues the members that became ready, then clears the outbox entry. A
//! crash between those steps only means the step runs again: enqueuing a ready member twice
//! stores it once. So a chord's callback runs exactly once, and nothing hangs or polls.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lost_reply::ask_until_answered;
use super::{Broker, BrokerError, Idempotency, NewTask, scripts};
use crate::id::{QueueName, TaskId};
use crate::record::{TaskRecord, WorkflowLink};
use crate::state::TaskState;
use crate::trace::TraceParent;
use crate::workflow::{Plan, apply_input};

/// A started workflow: its id and its members' task ids, by node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkflowStarted {
    #[cfg_attr(feature = "openapi", schema(example = "wf-01a20f3f30df7484bcfb6d3bb98a5ee9"))]
    pub workflow_id: String,
    pub tasks: Vec<MemberRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberRef {
    pub node: usize,
    pub task: String,
    pub task_id: String,
}

/// What a start under an `Idempotency-Key` did.
#[derive(Debug, Clone)]
pub enum WorkflowOutcome {
    /// The workflow is stored and its first members queued: now, or (`replayed`) by an
    /// earlier request with the same key, whose workflow this is. `state`: its state now.
    Accepted {
        started: WorkflowStarted,
        state: String,
        replayed: bool,
    },
    /// The key was used for a different request (for this workflow): nothing was started.
    KeyReused { workflow_id: String },
}

/// Whose an idempotency key is.
enum KeyClaim {
    Ours,
    Taken { workflow_id: String, same_request: bool },
}

/// A workflow as `GET /workflows/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkflowStatus {
    pub workflow_id: String,
    /// `RUNNING`, `SUCCESS`, `FAILURE` or `REVOKED`.
    pub state: String,
    pub members: Vec<MemberStatus>,
    /// The workflow's result once it succeeded (a chain's last result, a group's list...).
    pub result: Option<Value>,
    /// The member that failed, and its error.
    pub failed: Option<FailedMember>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberStatus {
    pub node: usize,
    pub task: String,
    pub task_id: String,
    /// The member task's state, or `WAITING` before it is enqueued.
    pub state: String,
    /// Whether this is the error callback.
    pub on_error: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailedMember {
    pub task_id: String,
    pub error: Value,
}

/// The nodes a workflow starts with: those that wait for no other (the error callback waits
/// for a failure).
fn first_nodes(plan: &Plan) -> Vec<usize> {
    (0..plan.nodes.len())
        .filter(|n| plan.nodes[*n].deps.is_empty() && Some(*n) != plan.on_error)
        .collect()
}

/// A new workflow id: `wf-` and 32 hex digits, ordered by time.
fn new_workflow_id() -> String {
    format!("wf-{}", uuid::Uuid::now_v7().simple())
}

/// A workflow id: `wf-` and 32 hex digits.
pub fn parse_workflow_id(raw: &str) -> Option<&str> {
    let hex = raw.strip_prefix("wf-")?;
    (hex.len() == 32 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))).then_some(raw)
}

fn node_queue(plan: &Plan, node: usize) -> Result<QueueName, BrokerError> {
    QueueName::parse(plan.nodes[node].queue.as_deref().unwrap_or("default")).map_err(BrokerError::Protocol)
}

fn node_task_id(workflow: &str, plan: &Plan, node: usize) -> Result<TaskId, BrokerError> {
    Ok(TaskId::derived(&node_queue(plan, node)?, &format!("{workflow}/{node}")))
}

/// The answer to a started workflow: its id and its members' task ids.
fn started(id: &str, plan: &Plan) -> Result<WorkflowStarted, BrokerError> {
    let tasks = (0..plan.nodes.len())
        .map(|n| {
            Ok(MemberRef {
                node: n,
                task: plan.nodes[n].task.clone(),
                task_id: node_task_id(id, plan, n)?.to_string(),
            })
        })
        .collect::<Result<_, BrokerError>>()?;
    Ok(WorkflowStarted {
        workflow_id: id.to_owned(),
        tasks,
    })
}

impl Broker {
    /// Stores the workflow and enqueues its first members. Each node's queue must be set
    /// (`None` means `default`).
    ///
    /// The start is marked from before the workflow is stored until its first members are
    /// enqueued, so a start cut short (its process died, or its request was dropped) is found
    /// and finished by [`Broker::finish_abandoned_starts`] instead of staying RUNNING with no
    /// member to move it. A stored workflow runs, as a stored task does, whether or not the
    /// answer reached its caller.
    pub async fn start_workflow(&self, plan: &Plan) -> Result<WorkflowStarted, BrokerError> {
        let id = new_workflow_id();
        self.store_and_start(&id, plan, false).await?;
        started(&id, plan)
    }

    /// [`Broker::start_workflow`] under an `Idempotency-Key`: a repeat of the same request
    /// within the key's TTL gets the first workflow back, and completes its start if that was
    /// cut short, instead of starting a second one.
    ///
    /// The key is claimed first (a plain `SET NX`: the claim and the workflow live under
    /// different hash tags). A start cut between the claim and storing the workflow is
    /// completed by the repeat, with the claimed id. The claim lives no longer than a result
    /// (`result_ttl`), and the workflow, stored after it, no shorter, so a claim never points
    /// at a workflow that ended and expired: a repeat never runs a workflow twice.
    pub async fn start_workflow_with_key(&self, plan: &Plan, idempotency: &Idempotency) -> Result<WorkflowOutcome, BrokerError> {
        let fresh = new_workflow_id();
        let (id, replayed) = match self.claim_workflow_key(idempotency, &fresh).await? {
            KeyClaim::Ours => (fresh, false),
            KeyClaim::Taken {
                workflow_id,
                same_request: true,
            } => (workflow_id, true),
            KeyClaim::Taken {
                workflow_id,
                same_request: false,
            } => return Ok(WorkflowOutcome::KeyReused { workflow_id }),
        };
        // Under a key, "exists" is the same request's workflow, stored by a repeat that came
        // before this start was done, or by the request this one repeats.
        self.store_and_start(&id, plan, true).await?;
        let state = if replayed {
            self.conn.clone().hget::<_, _, Option<String>>(self.keys.workflow(&id), "s").await?
        } else {
            None
        };
        Ok(WorkflowOutcome::Accepted {
            started: started(&id, plan)?,
            state: state.unwrap_or_else(|| "RUNNING".into()),
            replayed,
        })
    }

    /// Claims `idempotency`'s key for the workflow `fresh`, or finds whose it is.
    async fn claim_workflow_key(&self, idempotency: &Idempotency, fresh: &str) -> Result<KeyClaim, BrokerError> {
        let key = self.keys.workflow_idempotency(&idempotency.key);
        let ttl = idempotency.ttl_secs.min(self.result_ttl_secs);
        let value = format!("{fresh} {}", idempotency.fingerprint);
        // Twice at most: a claim that expires between the SET and the GET is claimed again.
        for _ in 0..2 {
            let first: Option<String> = ask_until_answered("workflow key claim", &idempotency.key, |_| async {
                let claimed: bool = redis::cmd("SET")
                    .arg(&key)
                    .arg(&value)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl)
                    .query_async::<Option<String>>(&mut self.conn.clone())
                    .await?
                    .is_some();
                if claimed {
                    Ok(Some(value.clone()))
                } else {
                    Ok(self.conn.clone().get(&key).await?)
                }
            })
            .await?;
            let Some(first) = first else { continue };
            let (workflow_id, fingerprint) = first.split_once(' ').unwrap_or((&first, ""));
            let workflow_id =
                parse_workflow_id(workflow_id).ok_or_else(|| BrokerError::Protocol(format!("workflow key value {first:?}")))?;
            // Our own value: claimed now, or by an attempt whose answer was lost.
            if workflow_id == fresh {
                return Ok(KeyClaim::Ours);
            }
            return Ok(KeyClaim::Taken {
                workflow_id: workflow_id.to_owned(),
                same_request: fingerprint == idempotency.fingerprint,
            });
        }
        Err(BrokerError::Protocol(format!(
            "the workflow key {:?} could not be claimed",
            idempotency.key
        )))
    }

    /// Marks the start of workflow `id`, stores it, enqueues its first members and unmarks
    /// it. `keyed`: the id is an idempotency key's, so a workflow stored under it already is
    /// this request's (stored by a repeat, or by the request this one repeats); then its start
    /// is completed, which is safe at any point of the other one, as the workers' sweep is.
    async fn store_and_start(&self, id: &str, plan: &Plan, keyed: bool) -> Result<(), BrokerError> {
        let starting = self.keys.workflows_starting();
        let _: () = self.conn.clone().zadd(&starting, id, self.clock.now_ms()).await?;
        let mut fields: Vec<String> = Vec::new();
        let mut successors: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (n, node) in plan.nodes.iter().enumerate() {
            if !node.deps.is_empty() {
                fields.extend([format!("left:{n}"), node.deps.len().to_string()]);
            }
            for d in &node.deps {
                successors.entry(*d).or_default().push(n);
            }
        }
        for (n, succ) in successors {
            fields.extend([format!("succ:{n}"), succ.iter().map(usize::to_string).collect::<Vec<_>>().join(",")]);
        }
        let plan_json = serde_json::to_string(plan).expect("plan serializes");
        let on_error = plan.on_error.map(|n| n as i64).unwrap_or(-1);
        let mut call = scripts::WF_CREATE.prepare_invoke();
        call.key(self.keys.workflow(id))
            .arg(plan_json)
            .arg(plan.members())
            .arg(self.clock.now_ms())
            .arg(on_error);
        for f in &fields {
            call.arg(f);
        }
        // Found stored after a lost answer: stored by the attempt that lost it.
        let call = &call;
        let created = ask_until_answered("workflow store", &id, |sent_before| async move {
            let created: i64 = call.invoke_async(&mut self.conn.clone()).await?;
            Ok((created == 1, sent_before))
        })
        .await?;
        match created {
            (true, _) => self.enqueue_nodes(id, plan, &first_nodes(plan), &HashMap::new(), None).await?,
            (false, sent_before) if sent_before || keyed => {
                self.finish_start(id).await?;
            }
            (false, _) => return Err(BrokerError::Protocol(format!("workflow {id} exists already"))),
        }
        let _: () = self.conn.clone().zrem(&starting, id).await?;
        Ok(())
    }

    /// Enqueues `nodes` of the workflow with their inputs, grouped by queue. A batch whose
    /// tasks exist already was stored by an earlier run of this step: that is success. A lost
    /// reply is asked again ([`Broker::enqueue`]), so a broken connection does not leave a
    /// workflow without its tasks.
    async fn enqueue_nodes(
        &self,
        workflow: &str,
        plan: &Plan,
        nodes: &[usize],
        results: &HashMap<usize, Value>,
        failure: Option<Value>,
    ) -> Result<(), BrokerError> {
        let mut by_queue: BTreeMap<QueueName, Vec<NewTask>> = BTreeMap::new();
        for &n in nodes {
            let node = &plan.nodes[n];
            let queue = node_queue(plan, n)?;
            let args = if Some(n) == plan.on_error {
                apply_input(&node.args, failure.clone().unwrap_or(Value::Null))
            } else {
                match &node.input {
                    Some(input) => apply_input(&node.args, input.resolve(&|d| results.get(&d).cloned().unwrap_or(Value::Null))),
                    None => node.args.clone(),
                }
            };
            let mut task = NewTask::new(&queue, &node.task, &args);
            task.id = node_task_id(workflow, plan, n)?;
            task.options = node.options.clone();
            task.workflow = Some(format!("{workflow} {n}"));
            task.traceparent = plan.traceparent.as_deref().and_then(TraceParent::parse);
            by_queue.entry(queue).or_default().push(task);
        }
        for (queue, tasks) in by_queue {
            match self.enqueue(&queue, &tasks, 0, None).await {
                Ok(_) | Err(BrokerError::Duplicate(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Tells workflows about their members on `queue` that ended, enqueuing the members that
    /// became ready. Returns how many outbox entries were handled.
    pub async fn process_workflow_outbox(&self, queue: &QueueName) -> Result<usize, BrokerError> {
        let outbox = self.keys.workflow_outbox(queue);
        let entries: Vec<String> = self.conn.clone().lrange(&outbox, -100, -1).await?;
        for suffix in entries.iter().rev() {
            let id =
                TaskId::parse(&format!("{queue}-{suffix}")).ok_or_else(|| BrokerError::Protocol(format!("outbox entry {suffix:?}")))?;
            if let Some(record) = self.get(&id).await?
                && let Some(link) = &record.workflow
                && record.state.is_terminal()
            {
                self.advance_workflow(link, &record).await?;
            }
            let _: i64 = self.conn.clone().lrem(&outbox, 1, suffix).await?;
        }
        Ok(entries.len())
    }

    async fn advance_workflow(&self, link: &WorkflowLink, record: &TaskRecord) -> Result<(), BrokerError> {
        let payload = match record.state {
            TaskState::Success => record.result.clone().unwrap_or(Value::Null),
            _ => serde_json::to_value(&record.error).expect("error serializes"),
        };
        let key = self.keys.workflow(&link.workflow_id);
        let reply: Vec<String> = scripts::WF_ADVANCE
            .key(&key)
            .arg(link.node)
            .arg(record.state.as_str())
            .arg(payload.to_string())
            .arg(self.result_ttl_secs)
            .arg(record.task_id.to_string())
            .invoke_async(&mut self.conn.clone())
            .await?;
        let ready: Vec<usize> = reply.iter().skip(1).filter_map(|n| n.parse().ok()).collect();
        if ready.is_empty() {
            return Ok(());
        }
        let plan_json: String = self.conn.clone().hget(&key, "plan").await?;
        let plan: Plan = serde_json::from_str(&plan_json).map_err(|e| BrokerError::Protocol(e.to_string()))?;
        let mut needed: Vec<usize> = Vec::new();
        for &n in &ready {
            if let Some(input) = &plan.nodes[n].input {
                input.nodes(&mut needed);
            }
        }
        let results = self.node_results(&key, &needed).await?;
        let failure = if ready.iter().any(|n| Some(*n) == plan.on_error) {
            let (task_id, error): (Option<String>, Option<String>) = redis::cmd("HMGET")
                .arg(&key)
                .arg("failed_id")
                .arg("err")
                .query_async(&mut self.conn.clone())
                .await?;

            let error = error.and_then(|e| serde_json::from_str::<Value>(&e).ok()).unwrap_or(Value::Null);
            Some(serde_json::json!({ "task_id": task_id, "error": error }))
        } else {
            None
        };
        self.enqueue_nodes(&link.workflow_id, &plan, &ready, &results, failure).await
    }

    async fn node_results(&self, key: &str, nodes: &[usize]) -> Result<HashMap<usize, Value>, BrokerError> {
        if nodes.is_empty() {
            return Ok(HashMap::new());
        }
        let fields: Vec<String> = nodes.iter().map(|n| format!("r:{n}")).collect();
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(key)
            .arg(&fields)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(nodes
            .iter()
            .zip(values)
            .filter_map(|(n, v)| Some((*n, serde_json::from_str(&v?).ok()?)))
            .collect())
    }

    /// The workflow's state, members and result; `None` for an unknown or expired id.
    pub async fn workflow_status(&self, id: &str) -> Result<Option<WorkflowStatus>, BrokerError> {
        let key = self.keys.workflow(id);
        let fields: HashMap<String, String> = self.conn.clone().hgetall(&key).await?;
        let Some(plan) = fields.get("plan").and_then(|p| serde_json::from_str::<Plan>(p).ok()) else {
            return Ok(None);
        };
        let state = fields.get("s").cloned().unwrap_or_default();
        let result_of = |n: usize| {
            fields
                .get(&format!("r:{n}"))
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or(Value::Null)
        };
        let mut members = Vec::with_capacity(plan.nodes.len());
        for (n, node) in plan.nodes.iter().enumerate() {
            let task_id = node_task_id(id, &plan, n)?;
            let state = match fields.get(&format!("st:{n}")) {
                Some(s) => s.clone(),
                None => self
                    .conn
                    .clone()
                    .hget::<_, _, Option<String>>(self.keys.task(&task_id), "s")
                    .await?
                    .unwrap_or_else(|| "WAITING".into()),
            };
            members.push(MemberStatus {
                node: n,
                task: node.task.clone(),
                task_id: task_id.to_string(),
                state,
                on_error: Some(n) == plan.on_error,
            });
        }
        let failed = fields.get("failed_id").map(|task_id| FailedMember {
            task_id: task_id.clone(),
            error: fields.get("err").and_then(|e| serde_json::from_str(e).ok()).unwrap_or(Value::Null),
        });
        let result = (state == "SUCCESS").then(|| plan.output.resolve(&result_of));
        Ok(Some(WorkflowStatus {
            workflow_id: id.to_owned(),
            state,
            members,
            result,
            failed,
        }))
    }

    /// Finishes the workflow starts that began more than `older_than` ago and never completed
    /// (see [`Broker::start_workflow`]): their starter died or was cancelled between storing
    /// the workflow and enqueuing its first members, and without this they would stay RUNNING
    /// forever. Their first members are enqueued, which stores each once however many times
    /// it is done (deterministic ids), so this is safe at any time, with any number of callers,
    /// even while the starter is still at it. A start cut before the workflow was stored is
    /// just forgotten; a workflow revoked meanwhile is left alone. Returns the ids of the
    /// workflows started here (at most 100 looked at a call).
    pub async fn finish_abandoned_starts(&self, older_than: Duration) -> Result<Vec<String>, BrokerError> {
        let starting = self.keys.workflows_starting();
        let before = self.clock.now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        let ids: Vec<String> = self.conn.clone().zrangebyscore_limit(&starting, "-inf", before, 0, 100).await?;
        let mut started = Vec::new();
        for id in ids {
            match self.finish_start(&id).await {
                Ok(true) => started.push(id.clone()),
                Ok(false) => {}
                Err(e @ BrokerError::Redis(_)) => return Err(e),
                // Never startable (its stored plan is broken): forgotten, so that it cannot
                // hold up the others.
                Err(e) => {
                    tracing::error!(workflow = %id, error = %e, "a workflow's first members cannot be enqueued; its start is given up")
                }
            }
            let _: () = self.conn.clone().zrem(&starting, &id).await?;
        }
        Ok(started)
    }

    /// Enqueues the first members of workflow `id` if it is stored and running; whether it did.
    async fn finish_start(&self, id: &str) -> Result<bool, BrokerError> {
        let (state, plan): (Option<String>, Option<String>) = self.conn.clone().hmget(self.keys.workflow(id), &["s", "plan"]).await?;
        let (Some("RUNNING"), Some(plan)) = (state.as_deref(), plan) else {
            return Ok(false);
        };
        let plan: Plan = serde_json::from_str(&plan).map_err(|e| BrokerError::Protocol(format!("workflow {id}'s plan: {e}")))?;
        self.enqueue_nodes(id, &plan, &first_nodes(&plan), &HashMap::new(), None).await?;
        Ok(true)
    }

    /// Revokes a running workflow: no member starts any more, and the members not finished are
    /// revoked (running ones stopped). Returns the state it had, or `None` if unknown.
    pub async fn revoke_workflow(&self, id: &str) -> Result<Option<String>, BrokerError> {
        let key = self.keys.workflow(id);
        let before: String = scripts::WF_REVOKE
            .key(&key)
            .arg(self.result_ttl_secs)
            .invoke_async(&mut self.conn.clone())
            .await?;
        if before == "MISSING" {
            return Ok(None);
        }
        if before == "RUNNING" {
            let plan_json: String = self.conn.clone().hget(&key, "plan").await?;
            let plan: Plan = serde_json::from_str(&plan_json).map_err(|e| BrokerError::Protocol(e.to_string()))?;
            for n in 0..plan.nodes.len() {
                self.revoke(&node_task_id(id, &plan, n)?, true, "its workflow was revoked").await?;
            }
        }
        Ok(Some(before))
    }
}
