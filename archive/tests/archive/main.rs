//! The archive's tests, against a real PostgreSQL and a real redis-server started by the
//! harness: the schema's migrations, the hand-over of every kind of ending by the broker's
//! scripts, and the archiver catching up, surviving its own death and PostgreSQL's restart.

mod catch_up;
mod common;
mod drive;
mod dump;
mod faults;
mod handover;
mod outbox;
mod retention;
mod schema;
mod search;
