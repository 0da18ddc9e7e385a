//! What Redis says about itself: CPU time, commands executed (counting those run inside
//! scripts) and memory, read from INFO.

use std::time::Duration;

use celeriac::broker::RedisConnection;
use redis::aio::ConnectionLike;

async fn info(conn: &mut impl ConnectionLike, section: &str) -> anyhow::Result<String> {
    Ok(redis::cmd("INFO").arg(section).query_async(conn).await?)
}

fn field(info: &str, name: &str) -> f64 {
    info.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Redis' own CPU time (user + system) so far.
pub async fn cpu(conn: &mut impl ConnectionLike) -> anyhow::Result<Duration> {
    let info = info(conn, "cpu").await?;
    Ok(Duration::from_secs_f64(
        field(&info, "used_cpu_user") + field(&info, "used_cpu_sys"),
    ))
}

/// Bytes of memory Redis uses for data.
pub async fn used_memory(conn: &mut RedisConnection) -> anyhow::Result<u64> {
    Ok(field(&info(conn, "memory").await?, "used_memory") as u64)
}

/// Commands executed since the last reset (EVALSHA and what the scripts ran), with the
/// microseconds Redis spent in each: a profile of where its time goes.
pub async fn commands(conn: &mut impl ConnectionLike) -> anyhow::Result<Vec<CommandStat>> {
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
pub async fn reset(conn: &mut impl ConnectionLike) -> anyhow::Result<()> {
    redis::cmd("CONFIG").arg("RESETSTAT").query_async::<()>(conn).await?;
    Ok(())
}

/// What Redis spent on one phase of a run: opened before it, read after it.
pub struct Phase {
    cpu_before: Duration,
}

/// Redis' cost of a phase, per task.
pub struct PhaseCost {
    /// CPU microseconds (user + system) per task.
    pub cpu_us: f64,
    /// Commands per task, counting those run inside scripts (not the scripts themselves).
    pub commands: f64,
    /// Per command: microseconds and calls per task, most expensive first.
    pub profile: Vec<(String, f64, f64)>,
}

impl Phase {
    pub async fn open(conn: &mut RedisConnection) -> anyhow::Result<Self> {
        reset(conn).await?;
        Ok(Self {
            cpu_before: cpu(conn).await?,
        })
    }

    /// The cost of what ran since `open`, per task of `tasks`. The bench's own reads
    /// (INFO, HGET of the counters, CONFIG) are left out of the command counts.
    pub async fn close(self, conn: &mut RedisConnection, tasks: usize) -> anyhow::Result<PhaseCost> {
        let n = tasks.max(1) as f64;
        let cpu_us = (cpu(conn).await? - self.cpu_before).as_secs_f64() * 1e6 / n;
        let mut stats = commands(conn).await?;
        stats.retain(|c| !["info", "hget", "config"].contains(&c.name.as_str()));
        let commands = stats
            .iter()
            .filter(|c| c.name != "evalsha" && c.name != "eval")
            .map(|c| c.calls as f64)
            .sum::<f64>()
            / n;
        stats.sort_by(|a, b| b.usec.total_cmp(&a.usec));
        let profile = stats.into_iter().map(|c| (c.name, c.usec / n, c.calls as f64 / n)).collect();
        Ok(PhaseCost { cpu_us, commands, profile })
    }
}

impl PhaseCost {
    /// Prints where Redis spent its time, per task.
    pub fn print_profile(&self, what: &str) {
        println!("  profile: where Redis spent its time during {what}, per task");
        for (name, us, calls) in self.profile.iter().take(14) {
            println!("    {name:<14} {us:>7.2} µs  {calls:>5.2} calls");
        }
    }
}
