//! `celeriac-beat`: fires the periodic schedules of the settings file and of the API. Run as
//! many as you like; each occurrence is enqueued once.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    celeriac_worker::cli::run_beat().await
}
