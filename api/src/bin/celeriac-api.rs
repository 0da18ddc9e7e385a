//! `celeriac-api`: the HTTP gateway. `celeriac-api openapi` prints the OpenAPI document.

use celeriac::Settings;
use celeriac_api::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        print!("{}", celeriac_api::openapi::yaml());
        return Ok(());
    }
    let settings = Settings::load()?;
    celeriac::telemetry::init(&settings.log);
    let shutdown = celeriac::shutdown::on_signal();
    let app = Application::build(settings, shutdown).await?;
    app.run_until_stopped().await?;
    Ok(())
}
