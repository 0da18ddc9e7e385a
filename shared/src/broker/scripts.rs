//! The Lua scripts, loaded once per process. `redis::Script` sends EVALSHA and falls back to
//! loading the script when Redis answers NOSCRIPT (after a restart, for instance).

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!($file)));
    };
}

script!(ENQUEUE, "lua/enqueue.lua");
script!(CLAIM, "lua/claim.lua");
script!(START, "lua/start.lua");
script!(FINISH, "lua/finish.lua");
script!(REQUEUE, "lua/requeue.lua");
script!(PROGRESS, "lua/progress.lua");
script!(PROMOTE, "lua/promote.lua");
script!(REVOKE, "lua/revoke.lua");
script!(RETRY, "lua/retry.lua");
script!(WF_CREATE, "lua/wf_create.lua");
script!(WF_ADVANCE, "lua/wf_advance.lua");
script!(WF_REVOKE, "lua/wf_revoke.lua");
script!(SCHEDULE_PUT, "lua/schedule_put.lua");
script!(SCHEDULE_DELETE, "lua/schedule_delete.lua");
script!(SCHEDULE_PAUSE, "lua/schedule_pause.lua");
script!(SCHEDULE_FIRED, "lua/schedule_fired.lua");
script!(PURGE, "lua/purge.lua");
script!(PURGE_START, "lua/purge_start.lua");
