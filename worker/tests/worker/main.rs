//! The worker's integration tests, in one test binary (one link after every change to the
//! library, instead of one per file): the real `celeriac-worker` and `celeriac-beat` binaries
//! as child processes, on the harness in `common`.

mod beat;
mod chaos;
mod common;
mod failover;
mod faults;
mod limits;
mod payload;
mod queue_order;
mod recovery;
mod remote;
mod report_archive;
mod start_check;
mod threads;
mod webhooks;
mod workflows;
