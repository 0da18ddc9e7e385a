//! Each search filter of the history is served by an index (not a scan of the table): 20,000
//! archived tasks, then PostgreSQL's plan for every filter names the index meant for it.

use celeriac::TaskState;
use celeriac_archive::{History, SearchFilter};
use celeriac_testkit::PostgresServer;
use serde_json::json;

use crate::common::pool;

#[tokio::test]
async fn every_search_filter_is_served_by_its_index() {
    let pg = PostgresServer::start();
    let url = pg.fresh_database();
    let pool = pool(&url).await;
    celeriac_archive::schema::migrate(&pool).await.unwrap();
    // Rare values for each filter, so the planner prefers the filter's index to walking the
    // time order (what it should do with a million rows too).
    pg.fill_archive(&url, 20_000);
    let history = History::new(pool);
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let cases = [
        (
            "task",
            SearchFilter {
                task: Some("task_7".into()),
                ..Default::default()
            },
            "celeriac_tasks_task_finished",
        ),
        (
            "queue",
            SearchFilter {
                queue: Some("q7".into()),
                ..Default::default()
            },
            "celeriac_tasks_queue_finished",
        ),
        (
            "state",
            SearchFilter {
                state: Some(TaskState::Revoked),
                ..Default::default()
            },
            "celeriac_tasks_state_finished",
        ),
        (
            "time range",
            SearchFilter {
                from: Some(hour_ago - chrono::Duration::minutes(5)),
                to: Some(hour_ago),
                ..Default::default()
            },
            "celeriac_tasks_finished",
        ),
        (
            "tag",
            SearchFilter {
                tag: Some(("user_id".into(), "77".into())),
                ..Default::default()
            },
            "celeriac_tasks_tags",
        ),
        (
            "error text",
            SearchFilter {
                error: Some("mailbox 700".into()),
                ..Default::default()
            },
            "celeriac_tasks_error_text",
        ),
        (
            "args",
            SearchFilter {
                args: Some(json!({"to": "u77@example.com"})),
                ..Default::default()
            },
            "celeriac_tasks_args",
        ),
    ];
    for (name, filter, index) in cases {
        let plan = history.explain(&filter, 50).await.unwrap();
        assert!(plan.contains(index), "{name}: expected {index} in the plan:\n{plan}");
        assert!(!plan.contains("Seq Scan"), "{name}: a scan of the table:\n{plan}");
        let page = history.search(&filter, 50, None).await.unwrap();
        assert!(!page.tasks.is_empty(), "{name}: the sample matches something");
    }
}
