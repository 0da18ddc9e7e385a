//! The beat: real `celeriac-beat` processes racing on one schedule (one SIGKILLed midway, the
//! others stopped by SIGTERM), a Redis restart under a beat, and in-process ticks with a
//! moved clock for the misfire policies, pause/resume, the settings-file merge and a full
//! queue.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use celeriac::broker::ScheduleSource;
use celeriac::schedule::{Misfire, ScheduleDef, occurrence_id};
use celeriac::settings::TaskSettings;
use celeriac::{Broker, QueueName};
use celeriac_testkit::{RedisServer, eventually};
use celeriac_worker::{Beat, BeatConfig};

use crate::common::Setup;

const DEADLINE: Duration = Duration::from_secs(30);
const SCHEDULE: &str = "every-second";

fn default_queue() -> QueueName {
    QueueName::parse("default").unwrap()
}

/// A config folder whose `base.toml` defines one every-1-second `noop` schedule.
fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("[[schedules]]\nname = \"{SCHEDULE}\"\ntask = \"noop\"\nevery = \"1s\"\n");
    std::fs::write(dir.path().join("base.toml"), toml).unwrap();
    dir
}

/// Maps each pending suffix to its occurrence (ms), looking at every second around now.
/// Panics on a suffix that is no occurrence of the schedule.
fn occurrences(suffixes: &[String], around_ms: i64, span_ms: i64) -> Vec<i64> {
    let first = (around_ms - span_ms).div_euclid(1000) * 1000;
    let by_suffix: HashMap<String, i64> = (0..=(2 * span_ms / 1000))
        .map(|i| first + i * 1000)
        .map(|ms| (occurrence_id(SCHEDULE, &default_queue(), ms).suffix().to_owned(), ms))
        .collect();
    let mut found: Vec<i64> = suffixes
        .iter()
        .map(|s| *by_suffix.get(s).unwrap_or_else(|| panic!("{s} is not an occurrence of {SCHEDULE}")))
        .collect();
    found.sort();
    found
}

async fn count(setup: &Setup) -> usize {
    setup.pending_suffixes("default").await.len()
}

/// Waits for the pending list to reach `at_least` (Redis errors while it restarts are waited out).
async fn wait_count(setup: &Setup, at_least: usize, what: &str) -> usize {
    let key = setup.broker.keys().pending(&default_queue());
    eventually(DEADLINE, what, || async {
        let n: usize = redis::AsyncCommands::llen(&mut setup.broker.connection(), &key).await.ok()?;
        (n >= at_least).then_some(n)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_beats_enqueue_each_occurrence_once_even_when_one_is_killed() {
    let setup = Setup::new(RedisServer::start());
    let dir = config_dir();
    let started_ms = setup.broker.clock().now_ms();
    let mut beats: Vec<_> = (0..3).map(|_| setup.beat(dir.path())).collect();

    let before_kill = wait_count(&setup, 4, "the beats fire").await;
    beats[0].kill();
    wait_count(&setup, before_kill + 4, "the remaining beats go on firing after the SIGKILL").await;
    for beat in &beats[1..] {
        beat.terminate();
    }
    for beat in &mut beats[1..] {
        let status = beat.wait_exit(Duration::from_secs(10)).expect("beat exits on SIGTERM");
        assert!(status.success(), "exit status {status:?}");
    }

    let suffixes = setup.pending_suffixes("default").await;
    let unique: HashSet<&String> = suffixes.iter().collect();
    assert_eq!(unique.len(), suffixes.len(), "no occurrence enqueued twice: {suffixes:?}");
    let span = setup.broker.clock().now_ms() - started_ms + 5_000;
    let fired = occurrences(&suffixes, started_ms, span);
    let (first, last) = (fired[0], *fired.last().unwrap());
    let expected: Vec<i64> = (0..=(last - first) / 1000).map(|i| first + i * 1000).collect();
    assert_eq!(fired, expected, "every occurrence from the first to the last, no gaps");
    assert!(fired.len() >= 6, "{} occurrences", fired.len());

    let entry = setup.broker.schedule(SCHEDULE).await.unwrap().expect("the schedule is stored");
    assert_eq!(entry.source, ScheduleSource::Settings);
    assert_eq!(entry.def.queue.as_deref(), Some("default"), "resolved from the task's route");
    let last_id = entry.state.last_task_id.expect("a last task id");
    assert!(unique.contains(&last_id.suffix().to_owned()), "{last_id}");
    let record = setup.broker.get(&last_id).await.unwrap().expect("record");
    assert_eq!(record.task, "noop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_beat_goes_on_by_itself_after_redis_restarts() {
    let mut setup = Setup::new(RedisServer::start_persistent());
    let dir = config_dir();
    let mut beat = setup.beat(dir.path());
    let before = wait_count(&setup, 2, "the beat fires").await;
    setup.redis.restart();
    wait_count(&setup, before + 3, "the beat fires again after the restart").await;
    beat.terminate();
    assert!(beat.wait_exit(Duration::from_secs(10)).expect("exits").success());
    let suffixes = setup.pending_suffixes("default").await;
    let unique: HashSet<&String> = suffixes.iter().collect();
    assert_eq!(unique.len(), suffixes.len(), "{suffixes:?}");
}

fn hourly(name: &str, misfire: Misfire) -> ScheduleDef {
    serde_json::from_value(serde_json::json!({
        "name": name, "task": "noop", "every": "1h", "misfire": misfire,
    }))
    .unwrap()
}

fn config(schedules: Vec<ScheduleDef>) -> BeatConfig {
    BeatConfig {
        schedules,
        tasks: TaskSettings::default(),
        misfire_grace: Duration::from_secs(5),
    }
}

const HOUR: Duration = Duration::from_secs(3600);

fn latest_hour(broker: &Broker) -> i64 {
    let now = broker.clock().now_ms();
    now - now.rem_euclid(3_600_000)
}

#[tokio::test]
async fn after_downtime_once_runs_the_latest_missed_occurrence_and_skip_runs_none() {
    let setup = Setup::new(RedisServer::start());
    let settings = config(vec![hourly("catch-up", Misfire::Once), hourly("skipper", Misfire::Skip)]);
    let mut beat = Beat::new(setup.broker.clone(), settings.clone());
    beat.tick().await.unwrap();
    drop(beat);

    // Every beat is down for five and a half hours; then two start, with the same settings.
    setup.broker.clock().advance(HOUR * 5 + HOUR / 2);
    let mut a = Beat::new(setup.broker.clone(), settings.clone());
    let mut b = Beat::new(setup.broker.clone(), settings);
    let (ra, rb) = (a.tick().await.unwrap(), b.tick().await.unwrap());
    assert_eq!(ra.enqueued + rb.enqueued, 1, "one catch-up run, not five: {ra:?} {rb:?}");
    assert_eq!(ra.enqueued + ra.already_fired + rb.enqueued + rb.already_fired, 1);

    let occurrence = latest_hour(&setup.broker);
    let expected = occurrence_id("catch-up", &default_queue(), occurrence);
    assert_eq!(setup.pending_suffixes("default").await, [expected.suffix()]);
    let catch_up = setup.broker.schedule("catch-up").await.unwrap().unwrap();
    assert_eq!(catch_up.state.last_task_id.as_ref(), Some(&expected));
    assert_eq!(catch_up.state.last_occurrence_ms, Some(occurrence));
    let skipper = setup.broker.schedule("skipper").await.unwrap().unwrap();
    assert_eq!(skipper.state.last_task_id, None);
    assert_eq!(
        skipper.state.cursor,
        Some(occurrence),
        "the missed ones are decided, never fired later"
    );

    // The next ticks fire nothing until the next hour, then each schedule once, on time.
    assert_eq!(a.tick().await.unwrap().enqueued, 0);
    let now = setup.broker.clock().now_ms();
    setup
        .broker
        .clock()
        .advance(Duration::from_millis((3_600_000 - now.rem_euclid(3_600_000) + 1_000) as u64));
    assert_eq!(a.tick().await.unwrap().enqueued + b.tick().await.unwrap().enqueued, 2);
    assert_eq!(count(&setup).await, 3);
}

#[tokio::test]
async fn a_paused_schedule_fires_nothing_and_resuming_does_not_catch_up() {
    let setup = Setup::new(RedisServer::start());
    let mut def = hourly("api-made", Misfire::Once);
    def.queue = Some("default".into());
    setup.broker.put_schedule(&def, ScheduleSource::Api).await.unwrap();
    let mut beat = Beat::new(setup.broker.clone(), config(Vec::new()));
    assert!(setup.broker.set_schedule_paused("api-made", true).await.unwrap());
    setup.broker.clock().advance(HOUR * 2);
    assert_eq!(beat.tick().await.unwrap().enqueued, 0);
    assert!(setup.broker.set_schedule_paused("api-made", false).await.unwrap());
    assert_eq!(beat.tick().await.unwrap().enqueued, 0, "no catch-up for a pause");
    setup.broker.clock().advance(HOUR);
    assert_eq!(beat.tick().await.unwrap().enqueued, 1);
    assert!(
        setup.broker.schedule("api-made").await.unwrap().is_some(),
        "a beat without settings schedules leaves API ones alone"
    );
}

#[tokio::test]
async fn the_settings_file_wins_and_schedules_gone_from_it_are_removed() {
    let setup = Setup::new(RedisServer::start());
    let mut api_def = hourly("shared-name", Misfire::Skip);
    api_def.queue = Some("default".into());
    setup.broker.put_schedule(&api_def, ScheduleSource::Api).await.unwrap();

    let mut from_file = hourly("shared-name", Misfire::Once);
    from_file.task = "send_email".into();
    let mut beat = Beat::new(setup.broker.clone(), config(vec![from_file]));
    beat.tick().await.unwrap();
    let entry = setup.broker.schedule("shared-name").await.unwrap().unwrap();
    assert_eq!((entry.source, entry.def.task.as_str()), (ScheduleSource::Settings, "send_email"));
    assert_eq!(entry.def.queue.as_deref(), Some("emails"), "the built-in task's queue");

    let mut beat = Beat::new(setup.broker.clone(), config(Vec::new()));
    beat.tick().await.unwrap();
    assert!(setup.broker.schedule("shared-name").await.unwrap().is_none());
}

#[tokio::test]
async fn an_occurrence_refused_by_a_full_queue_is_fired_once_there_is_room() {
    let setup = Setup::new(RedisServer::start());
    let blocker = setup.enqueue("noop", serde_json::json!(null)).await;
    let mut settings = config(vec![hourly("hourly", Misfire::Skip)]);
    settings.tasks.max_pending.insert(default_queue(), 1);
    let mut beat = Beat::new(setup.broker.clone(), settings);
    beat.tick().await.unwrap();
    let now = setup.broker.clock().now_ms();
    setup
        .broker
        .clock()
        .advance(Duration::from_millis((3_600_000 - now.rem_euclid(3_600_000) + 500) as u64));
    assert_eq!(beat.tick().await.unwrap().enqueued, 0, "the queue is full");
    assert_eq!(setup.broker.schedule("hourly").await.unwrap().unwrap().state.last_task_id, None);

    setup.broker.revoke(&blocker, false, "make room").await.unwrap();
    assert_eq!(beat.tick().await.unwrap().enqueued, 1, "fired at the next tick, within the grace");
    let expected = occurrence_id("hourly", &default_queue(), latest_hour(&setup.broker));
    assert_eq!(
        setup.broker.schedule("hourly").await.unwrap().unwrap().state.last_task_id,
        Some(expected)
    );
}
