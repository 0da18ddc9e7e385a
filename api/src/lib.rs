//! Celeriac's HTTP gateway: enqueue tasks (`202` plus an id at once), read their state,
//! progress and result, and the OpenAPI document with its browsable UI.

pub mod archive_metrics;
pub mod auth;
pub mod contract;
pub mod enqueue;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod pull;
pub mod routes;
pub mod scope;
pub mod settings;
pub mod startup;
pub mod state;

pub use settings::GatewaySettings;
pub use startup::Application;
