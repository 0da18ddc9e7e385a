//! The `celeriac` tool against a real redis-server, gateway and worker: one test binary, a
//! module per area.

mod commands;
mod common;
mod terminal;
