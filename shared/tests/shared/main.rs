//! The library's integration tests, in one test binary (one link after every change to the
//! library, instead of one per file): the Lua transitions, workflow starts, schedules and the
//! Cluster key rule, each against a real redis-server.

mod batcher;
mod cluster_keys;
mod common;
mod payload;
mod resharding;
mod schedules;
mod scripts;
mod sharded_queues;
mod topology_cluster;
mod topology_sentinel;
mod topology_tls;
mod workflows;
