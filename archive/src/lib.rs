//! The PostgreSQL archive of tasks that ended: its schema (the repository's `migrations/`,
//! applied by [`schema::migrate`]) and the archiver ([`Archiver`]), which moves every ending
//! that the broker's scripts handed over to a queue's archive stream (shared's
//! `lua/archive.lua`) into the table `celeriac_tasks`, exactly once per task id.
//!
//! The archive is optional: with it off ([`ArchiveSettings::enabled`]), the broker's scripts
//! hand nothing over and no archiver runs.

pub mod activity;
pub mod archiver;
pub mod dump;
pub mod history;
pub mod relay;
pub mod retention;
pub mod row;
pub mod schema;
pub mod settings;
pub mod stream;
mod upsert;

pub use archiver::Archiver;
pub use history::{History, SearchCursor, SearchFilter, SearchPage};
pub use relay::Relay;
pub use row::ArchivedTask;
pub use settings::ArchiveSettings;
/// The PostgreSQL driver, for the crates that read the archive through this one.
pub use sqlx;
pub use stream::{QueueBacklog, backlog};
