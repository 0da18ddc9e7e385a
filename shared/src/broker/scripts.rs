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
}

script!(ENQUEUE, "lua/enqueue.lua");
script!(CLAIM, "lua/claim.lua");
script!(START, "lua/start.lua", with_history);
script!(FINISH, "lua/finish.lua", with_history);
script!(REQUEUE, "lua/requeue.lua", with_history);
script!(PROGRESS, "lua/progress.lua", with_history);
script!(PROMOTE, "lua/promote.lua", with_history);
script!(REVOKE, "lua/revoke.lua", with_history);
script!(RETRY, "lua/retry.lua", with_history);
script!(WF_CREATE, "lua/wf_create.lua");
script!(WF_ADVANCE, "lua/wf_advance.lua");
script!(WF_REVOKE, "lua/wf_revoke.lua");
script!(SCHEDULE_PUT, "lua/schedule_put.lua");
script!(SCHEDULE_DELETE, "lua/schedule_delete.lua");
script!(SCHEDULE_PAUSE, "lua/schedule_pause.lua");
script!(SCHEDULE_FIRED, "lua/schedule_fired.lua");
script!(PURGE, "lua/purge.lua", with_history);
script!(PURGE_START, "lua/purge_start.lua");
script!(LISTING, "lua/listing.lua");
