//! What Redis says about itself: CPU time, commands executed (counting those run inside
//! scripts) and memory, read from INFO.

use std::time::Duration;

use redis::aio::ConnectionManager;

async fn info(conn: &mut ConnectionManager, section: &str) -> anyhow::Result<String> {
    Ok(redis::cmd("INFO").arg(section).query_async(conn).await?)
}

fn field(info: &str, name: &str) -> f64 {
    info.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Redis' own CPU time (user + system) so far.
pub async fn cpu(conn: &mut ConnectionManager) -> anyhow::Result<Duration> {
    let info = info(conn, "cpu").await?;
    Ok(Duration::from_secs_f64(
        field(&info, "used_cpu_user") + field(&info, "used_cpu_sys"),
    ))
}

/// Bytes of memory Redis uses for data.
pub async fn used_memory(conn: &mut ConnectionManager) -> anyhow::Result<u64> {
    Ok(field(&info(conn, "memory").await?, "used_memory") as u64)
}

/// Commands executed since the last reset (EVALSHA and what the scripts ran), with the
/// microseconds Redis spent in each: a profile of where its time goes.
pub async fn commands(conn: &mut ConnectionManager) -> anyhow::Result<Vec<CommandStat>> {
    let info = info(conn, "commandstats").await?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |k: &str| rest.split(',').find_map(|kv| kv.strip_prefix(k))?.parse::<f64>().ok();
            Some(CommandStat {
                name: name.to_owned(),
                calls: field("calls=")? as u64,
                usec: field("usec=")?,
            })
        })
        .collect())
}

#[derive(Debug, Clone)]
pub struct CommandStat {
    pub name: String,
    pub calls: u64,
    pub usec: f64,
}

/// Clears the command counters.
pub async fn reset(conn: &mut ConnectionManager) -> anyhow::Result<()> {
    redis::cmd("CONFIG").arg("RESETSTAT").query_async::<()>(conn).await?;
    Ok(())
}
