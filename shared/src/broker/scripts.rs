//! The Lua scripts, loaded once per process. `redis::Script` sends EVALSHA and falls back to
//! loading the script when Redis answers NOSCRIPT (after a restart, for instance).

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!($file)));
    };
    // A script that logs task events gets history.lua (`next_event`, `increment`) in front of it.
    ($name:ident, $file:literal, with_history) => {
        pub(crate) static $name: LazyLock<Script> =
            LazyLock::new(|| Script::new(concat!(include_str!("lua/history.lua"), include_str!($file))));
    };
    // A script that makes tasks terminal also gets archive.lua (`archive_stream`, `archive`):
    // it hands each ending over to the archive in the same step.
    ($name:ident, $file:literal, with_history, ends_tasks) => {
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/history.lua"),
                include_str!("lua/archive.lua"),
                include_str!($file)
            ))
        });
    };
    // A script that takes ids out of in-flight hashes also gets slots.lua (`release_slots`):
    // it gives their concurrency slots back in the same step.
    ($name:ident, $file:literal, with_history, ends_tasks, ends_leases) => {
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/history.lua"),
                include_str!("lua/archive.lua"),
                include_str!("lua/slots.lua"),
                include_str!($file)
            ))
        });
    };
    // start.lua and fetch.lua start tasks (start_tasks.lua), and admit each under its key's
    // limits (keyed.lua).
    ($name:ident, $file:literal, with_history, ends_tasks, ends_leases, starts_tasks) => {
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/history.lua"),
                include_str!("lua/archive.lua"),
                include_str!("lua/slots.lua"),
                include_str!("lua/keyed.lua"),
                include_str!("lua/start_tasks.lua"),
                include_str!($file)
            ))
        });
    };
}

script!(ENQUEUE, "lua/enqueue.lua");
script!(CLAIM, "lua/claim.lua");
script!(START, "lua/start.lua", with_history, ends_tasks, ends_leases, starts_tasks);
script!(FETCH, "lua/fetch.lua", with_history, ends_tasks, ends_leases, starts_tasks);
script!(FINISH, "lua/finish.lua", with_history, ends_tasks, ends_leases);
script!(REQUEUE, "lua/requeue.lua", with_history, ends_tasks, ends_leases);
script!(PROGRESS, "lua/progress.lua", with_history);
script!(PROMOTE, "lua/promote.lua", with_history, ends_tasks);
script!(REVOKE, "lua/revoke.lua", with_history, ends_tasks);
script!(RETRY, "lua/retry.lua", with_history);
script!(WF_CREATE, "lua/wf_create.lua");
script!(WF_ADVANCE, "lua/wf_advance.lua");
script!(WF_REVOKE, "lua/wf_revoke.lua");
script!(SCHEDULE_PUT, "lua/schedule_put.lua");
script!(SCHEDULE_DELETE, "lua/schedule_delete.lua");
script!(SCHEDULE_PAUSE, "lua/schedule_pause.lua");
script!(SCHEDULE_FIRED, "lua/schedule_fired.lua");
script!(PURGE, "lua/purge.lua", with_history, ends_tasks);
script!(PURGE_START, "lua/purge_start.lua");
script!(LISTING, "lua/listing.lua");
script!(SHARDS_RAISE, "lua/shards_raise.lua");
script!(LIMITS_PUT, "lua/limits_put.lua");
script!(UNIQUE_RELEASE, "lua/unique_release.lua");
script!(DEBOUNCE, "lua/debounce.lua");
script!(WEBHOOK_DONE, "lua/webhook_done.lua");

/// A call of one of the scripts on the hot path (enqueue, start, finish), built straight into
/// one command: `EVALSHA <sha> <number of keys> <keys...> <arguments...>`.
/// `redis::ScriptInvocation` keeps every key and argument in an allocation of its own and
/// copies them all again into the command; for a batch of 100 tasks that was hundreds of
/// allocations, a large share of the client's work. All keys come before the first argument.
pub(crate) struct BatchCall {
    script: &'static Script,
    cmd: redis::Cmd,
    keys_left: usize,
}

impl BatchCall {
    /// A call of `script` with exactly `keys` keys.
    pub(crate) fn new(script: &'static LazyLock<Script>, keys: usize) -> Self {
        let script: &'static Script = script;
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.get_hash()).arg(keys);
        Self {
            script,
            cmd,
            keys_left: keys,
        }
    }

    pub(crate) fn key<K: redis::ToRedisArgs>(&mut self, key: K) -> &mut Self {
        assert!(self.keys_left > 0, "more keys than announced");
        self.keys_left -= 1;
        self.cmd.arg(key);
        self
    }

    pub(crate) fn arg<A: redis::ToRedisArgs>(&mut self, arg: A) -> &mut Self {
        assert_eq!(self.keys_left, 0, "an argument before the last key");
        self.cmd.arg(arg);
        self
    }

    /// Runs the call, loading the script first when Redis does not have it (NOSCRIPT).
    pub(crate) async fn invoke<T: redis::FromRedisValue>(&self, conn: &mut impl redis::aio::ConnectionLike) -> redis::RedisResult<T> {
        assert_eq!(self.keys_left, 0, "fewer keys than announced");
        match self.cmd.query_async(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.script.load_async(conn).await?;
                self.cmd.query_async(conn).await
            }
            other => other,
        }
    }
}
