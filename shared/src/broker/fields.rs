//! The layout of a task's Redis hash: its field names and the packed values some fields hold.
//! The hash uses one- and two-letter field names to keep a pending task small; this module is
//! the only place that knows them besides the Lua scripts. Reading a whole record is
//! `decode.rs`; reading the event log is `history.rs`.

use std::collections::HashMap;

use crate::id::made_ms_of;
use crate::record::WorkflowLink;

/// Field names of the task hash.
pub(crate) mod field {
    pub const STATE: &str = "s";
    /// The task as enqueued, packed ([`super::StoredSpec`]).
    pub const SPEC: &str = "t";
    /// How many times a worker started the task, written from the second start on (a
    /// first start writes one field less, for the drain's every task): absent, it is 1 when
    /// the record has a [`RUN`] and 0 when it has none. A script that deletes the run field
    /// (requeue.lua, retry.lua) writes `d` first when it is absent.
    pub const DELIVERIES: &str = "d";
    pub const RETRIES: &str = "rt";
    /// The current or last run: `<started ms> <worker id>`, one field (fewer fields is
    /// cheaper for every script that reads or writes the hash). Marked `*` in front while its
    /// STARTED event is not in [`HISTORY`] yet (history.lua).
    pub const RUN: &str = "w";
    pub const RESULT: &str = "r";
    pub const ERROR: &str = "e";
    pub const PROGRESS: &str = "p";
    pub const ETA: &str = "eta";
    pub const EXPIRES: &str = "x";
    pub const WORKFLOW: &str = "wf";
    /// The event log, newest line first (history.lua).
    pub const HISTORY: &str = "h";
    /// When a SUCCESS or FAILURE run ended (ms; finish.lua). That ending is the history's
    /// newest event, kept out of [`HISTORY`] so the acknowledgement need not read the log.
    pub const ENDED: &str = "z";
    /// The completion webhook's delivery log: one JSON object per attempt, oldest first, one
    /// per line (lua/webhook_done.lua appends; at most the last 20 are kept).
    pub const WEBHOOKS: &str = "wh";
    /// Records stored before the spec field existed kept its parts in fields of their own;
    /// they are still read (start.lua does the same), so an upgrade loses no pending task.
    pub mod legacy {
        pub const NAME: &str = "n";
        pub const ARGS: &str = "a";
        pub const CREATED: &str = "c";
        pub const OPTIONS: &str = "o";
        pub const TRACEPARENT: &str = "tp";
        /// The finish time, now read off the history's newest line.
        pub const FINISHED: &str = "fa";
        /// The start time, now the first part of [`super::RUN`] (then holding only the worker).
        pub const STARTED: &str = "sa";
    }
}

/// What is fixed about a task at enqueue, packed in one hash field (`t`) so the scripts read
/// and write it as one value, and Redis keeps one field instead of five:
/// `<name>\n<created ms>\n<traceparent>\n<options JSON>\n<args JSON>`, each part empty when
/// there is none. The arguments come last, so their text may hold anything. The created ms is
/// left out when the task's id holds it (a UUID v7 made in the ms of its enqueue, as nearly
/// every id is): 13 bytes less a pending task, and with them the record's listpack fits
/// jemalloc's 112-byte class instead of the 128-byte one for a short payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredSpec<'a> {
    pub name: &'a str,
    pub created_ms: Option<i64>,
    pub traceparent: &'a str,
    /// The task's options as JSON, or empty for none.
    pub options: &'a str,
    pub args: &'a str,
}

impl<'a> StoredSpec<'a> {
    /// The stored form. A name holding a line break would not read back, so the caller
    /// ([`crate::broker::Broker::enqueue`]) refuses one.
    pub(crate) fn pack(&self) -> String {
        let created = self.created_ms.map(|ms| ms.to_string()).unwrap_or_default();
        let parts = [self.name, &created, self.traceparent, self.options, self.args];
        parts.join("\n")
    }

    /// Reads the stored form. Never fails: a damaged spec gives empty parts, and the worker
    /// then fails the run for good (no such task, or arguments that are not JSON).
    pub(crate) fn parse(raw: &'a str) -> Self {
        let mut parts = raw.splitn(5, '\n');
        let mut next = || parts.next().unwrap_or_default();
        Self {
            name: next(),
            created_ms: next().parse().ok(),
            traceparent: next(),
            options: next(),
            args: next(),
        }
    }

    /// When the task was created: the ms stored, else the time its id suffix holds (none for
    /// a derived id, which is then always stored).
    pub(crate) fn created_ms_of(&self, suffix: &str) -> Option<i64> {
        self.created_ms.or_else(|| made_ms_of(suffix))
    }

    /// The spec of a record stored before the spec field existed, packed from its old fields.
    pub(super) fn from_legacy_fields(h: &HashMap<String, String>) -> String {
        let get = |f: &str| h.get(f).map(String::as_str).unwrap_or_default();
        StoredSpec {
            name: get(field::legacy::NAME),
            created_ms: get(field::legacy::CREATED).parse().ok(),
            traceparent: get(field::legacy::TRACEPARENT),
            options: get(field::legacy::OPTIONS),
            args: get(field::legacy::ARGS),
        }
        .pack()
    }
}

/// Who runs (or ran) a task, and since when: field `w`.
pub(crate) struct StoredRun {
    pub started_ms: Option<i64>,
    pub worker: String,
    /// Marked `*`: this start's STARTED event is not in the history yet (history.lua).
    pub unlogged: bool,
}

impl StoredRun {
    /// Reads `[*]<started ms> <worker id>`; a record stored before the start time moved here
    /// holds only the worker id, and its start time in `legacy_started`.
    pub(crate) fn parse(raw: &str, legacy_started: Option<i64>) -> Self {
        let (unlogged, raw) = match raw.strip_prefix('*') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        match raw.split_once(' ').and_then(|(ms, worker)| Some((ms.parse().ok()?, worker))) {
            Some((started, worker)) => Self {
                started_ms: Some(started),
                worker: worker.to_owned(),
                unlogged,
            },
            None => Self {
                started_ms: legacy_started,
                worker: raw.to_owned(),
                unlogged,
            },
        }
    }
}

/// Parses a workflow member's field `wf`: `"<workflow id> <node>"`.
pub(crate) fn parse_workflow_link(raw: &str) -> Option<WorkflowLink> {
    let (id, node) = raw.split_once(' ')?;
    Some(WorkflowLink {
        workflow_id: id.to_owned(),
        node: node.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_reads_back_as_packed() {
        let spec = StoredSpec {
            name: "send_email",
            created_ms: Some(1_764_626_000_123),
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            options: r#"{"max_retries":2}"#,
            args: "{\"body\":\"two\nlines\"}\n",
        };
        assert_eq!(StoredSpec::parse(&spec.pack()), spec);
        let bare = StoredSpec {
            name: "noop",
            created_ms: None,
            traceparent: "",
            options: "",
            args: "null",
        };
        assert_eq!(StoredSpec::parse(&bare.pack()), bare);
    }

    #[test]
    fn the_run_field_holds_the_start_time_and_the_worker_and_older_records_still_read() {
        let run = StoredRun::parse("1764626000000 vm.12.ab", None);
        assert_eq!((run.started_ms, run.worker.as_str()), (Some(1_764_626_000_000), "vm.12.ab"));
        let unlogged = StoredRun::parse("*1764626000000 vm.12.ab", None);
        assert_eq!(
            (unlogged.started_ms, unlogged.worker.as_str()),
            (Some(1_764_626_000_000), "vm.12.ab")
        );
        let old = StoredRun::parse("vm.12.ab", Some(17));
        assert_eq!((old.started_ms, old.worker.as_str()), (Some(17), "vm.12.ab"));
        let spaced = StoredRun::parse("my worker", Some(17));
        assert_eq!((spaced.started_ms, spaced.worker.as_str()), (Some(17), "my worker"));
    }

    #[test]
    fn a_spec_without_its_creation_time_takes_the_one_its_id_holds() {
        let spec = StoredSpec::parse("noop\n\n\n\nnull");
        let time_ordered = "019a3f4c5d6e7000800000000000002a";
        assert_eq!(spec.created_ms_of(time_ordered), Some(0x019a3f4c5d6e));
        assert_eq!(
            spec.created_ms_of("9c1185a5c5e9fc54612808977ee8f548"),
            None,
            "a derived id holds none"
        );
        let stored = StoredSpec::parse("noop\n1764626000123\n\n\nnull");
        assert_eq!(stored.created_ms_of(time_ordered), Some(1_764_626_000_123), "the stored time first");
    }

    #[test]
    fn a_damaged_spec_reads_as_empty_parts() {
        let spec = StoredSpec::parse("echo");
        assert_eq!((spec.name, spec.created_ms, spec.args), ("echo", None, ""));
    }
}
