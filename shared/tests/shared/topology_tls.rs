//! The broker over TLS with an ACL user, against a TLS-only redis-server whose certificates the
//! test makes: it works (with the CA file, and with a client certificate where the server
//! demands one); a wrong password, an untrusted certificate and a missing client certificate
//! each fail at start with one line naming the cause.

use std::time::Duration;

use celeriac::broker::{Claim, NewTask, Outcome, QueueWaiter, Started, TaskEvents, Verdict, new_claim_token};
use celeriac::settings::RedisSettings;
use celeriac::{Broker, QueueName, TaskState};
use celeriac_testkit::redis_tls::ACL_USER;
use celeriac_testkit::{RedisTls, TestCertificates, unique_namespace};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const TTL: Duration = Duration::from_secs(3600);

fn settings(url: &str, ca: &std::path::Path) -> RedisSettings {
    RedisSettings {
        url: url.into(),
        namespace: unique_namespace(),
        ca_file: Some(ca.to_owned()),
        ..RedisSettings::default()
    }
}

async fn one_line_failure(settings: &RedisSettings) -> String {
    let error = Broker::open(settings, TTL).await.unwrap_err().to_string();
    assert!(!error.contains('\n'), "{error}");
    eprintln!("start refused: {error}");
    error
}

#[tokio::test]
async fn the_broker_works_over_tls_as_an_acl_user() {
    let server = RedisTls::start();
    let broker = Broker::open(&settings(&server.url(), &server.certs.ca_cert), TTL).await.unwrap();
    let queue = QueueName::parse("default").unwrap();
    let stop = CancellationToken::new();
    let events = TaskEvents::spawn(&broker, stop.clone());
    let mut rx = events.subscribe();
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();

    let mut waiter = QueueWaiter::new(&broker, &queue);
    let wait = tokio::spawn(async move { waiter.wait_for_work(Duration::from_secs(10)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let task = NewTask::new(&queue, "echo", &json!(1));
    broker.enqueue(&queue, std::slice::from_ref(&task), 0, None).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), wait).await.unwrap().unwrap().unwrap());
    let Claim::Ids(ids) = broker
        .claim(&queue, "w1", 1, Duration::from_secs(30), &new_claim_token())
        .await
        .unwrap()
    else {
        panic!("paused")
    };
    let Some(Started::Run(d)) = broker.start(&queue, "w1", &ids).await.unwrap().pop() else {
        panic!("no run")
    };
    let outcome = Outcome {
        id: d.id,
        delivery: d.delivery,
        verdict: Verdict::Success("1".into()),
    };
    broker.finish(&queue, "w1", &[outcome]).await.unwrap();
    assert_eq!(broker.get(&task.id).await.unwrap().unwrap().state, TaskState::Success);
    // The start's event, published by a script, reached the subscription over TLS.
    let message = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(*message, *task.id.to_string());
    stop.cancel();
}

#[tokio::test]
async fn a_client_certificate_is_sent_where_the_server_demands_one() {
    let server = RedisTls::start_requiring_client_certs();
    let without = one_line_failure(&settings(&server.url(), &server.certs.ca_cert)).await;
    assert!(without.starts_with("redis: "), "{without}");
    let with = RedisSettings {
        client_cert: Some(server.certs.client_cert.clone()),
        client_key: Some(server.certs.client_key.clone()),
        ..settings(&server.url(), &server.certs.ca_cert)
    };
    let broker = Broker::open(&with, TTL).await.unwrap();
    broker.ping().await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_fails_at_start_in_one_line() {
    let server = RedisTls::start();
    let error = one_line_failure(&settings(&server.url_with(ACL_USER, "wrong"), &server.certs.ca_cert)).await;
    assert!(error.contains("authentication failed"), "{error}");
}

#[tokio::test]
async fn an_untrusted_certificate_fails_at_start_in_one_line() {
    let server = RedisTls::start();
    let other = TestCertificates::generate(&server.dir(), "other");
    let error = one_line_failure(&settings(&server.url(), &other.ca_cert)).await;
    assert!(error.contains("TLS") && error.contains("certificate"), "{error}");
}

#[tokio::test]
async fn a_missing_ca_file_is_named_before_connecting() {
    let error = one_line_failure(&settings("rediss://127.0.0.1:1", std::path::Path::new("/nonexistent/ca.pem"))).await;
    assert!(
        error.starts_with("redis.ca_file: ") && error.contains("/nonexistent/ca.pem"),
        "{error}"
    );
}
