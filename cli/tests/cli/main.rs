//! The `celeriac` tool against a real redis-server, gateway and worker (and for the history a
//! real PostgreSQL and archiver): one test binary, a module per area.

mod commands;
mod common;
mod history;
mod terminal;
