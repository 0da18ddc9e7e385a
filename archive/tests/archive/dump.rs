//! The archive's decoder of record dumps (src/dump.rs) against real redis-server dumps: every
//! listpack element encoding (integers of each width, strings of each length class), the
//! plain hash encoding of a record with a value over `hash-max-listpack-value`, with LZF
//! compression on and off, and real task records; each decoded exactly as `HGETALL` reads
//! the hash. And Redis' own decoding (`RESTORE`), the archiver's fallback.

use std::collections::HashMap;

use celeriac_archive::dump::{self, DumpError};
use celeriac_archive::stream::{self, Handover};
use celeriac_testkit::RedisServer;

use crate::common::{env, run_tasks};

/// Values exercising every way a listpack or RDB string holds them.
fn values() -> Vec<String> {
    let mut values: Vec<String> = [
        "0",
        "1",
        "127",
        "128",
        "-1",
        "-64",
        "4095",
        "4096",
        "-4096",
        "-4097",
        "8191",
        "32767",
        "-32768",
        "32768",
        "8388607",
        "-8388608",
        "8388608",
        "2147483647",
        "-2147483648",
        "2147483648",
        "9223372036854775807",
        "-9223372036854775808",
        "007",
        "+1",
        "1.5",
        "",
        "é✓ unicode",
    ]
    .map(str::to_owned)
    .to_vec();
    for len in [20, 21, 63, 64, 65, 200, 511, 512] {
        values.push("x".repeat(len)); // compressible
        values.push((0..len).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect());
    }
    values
}

async fn dump_and_hgetall(conn: &mut impl redis::aio::ConnectionLike, key: &str) -> (Vec<u8>, HashMap<String, String>) {
    let dump: Vec<u8> = redis::cmd("DUMP").arg(key).query_async(conn).await.unwrap();
    let fields: HashMap<String, String> = redis::cmd("HGETALL").arg(key).query_async(conn).await.unwrap();
    (dump, fields)
}

#[tokio::test]
async fn every_encoding_decodes_as_hgetall_reads_it() {
    let redis = RedisServer::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for compression in ["yes", "no"] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("rdbcompression")
            .arg(compression)
            .query_async(&mut conn)
            .await
            .unwrap();
        // One hash per value (as field and as value), small enough to stay a listpack.
        for (i, value) in values().iter().enumerate() {
            let key = format!("h:{compression}:{i}");
            let _: () = redis::cmd("HSET")
                .arg(&key)
                .arg(value)
                .arg(value)
                .arg("f")
                .arg(value)
                .query_async(&mut conn)
                .await
                .unwrap();
            let (dump, fields) = dump_and_hgetall(&mut conn, &key).await;
            assert_eq!(dump[0], 16, "a listpack hash");
            assert_eq!(dump::hash_fields(&dump), Ok(fields), "value {value:?}, compression {compression}");
        }
        // All of them in one hash; then a value over 512 bytes makes it a plain hash (type 4).
        let key = format!("all:{compression}");
        for (i, value) in values().iter().enumerate() {
            let _: () = redis::cmd("HSET")
                .arg(&key)
                .arg(format!("f{i}"))
                .arg(value)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        let (dump, fields) = dump_and_hgetall(&mut conn, &key).await;
        assert_eq!(dump::hash_fields(&dump), Ok(fields));
        let _: () = redis::cmd("HSET")
            .arg(&key)
            .arg("big")
            .arg("y".repeat(5000))
            .query_async(&mut conn)
            .await
            .unwrap();
        let (dump, fields) = dump_and_hgetall(&mut conn, &key).await;
        assert_eq!(dump[0], 4, "a plain hash");
        assert_eq!(dump::hash_fields(&dump), Ok(fields));
    }
}

#[tokio::test]
async fn task_records_decode_and_redis_restores_the_same() {
    let env = env().await;
    let b = &env.broker;
    let ids = run_tasks(b, 6).await;
    let key = b.keys().archive(&crate::common::queue());
    let mut conn = b.connection();
    for id in &ids {
        let task = b.keys().task(&celeriac::TaskId::parse(id).unwrap());
        let (dump, fields) = dump_and_hgetall(&mut conn, &task).await;
        assert_eq!(dump::hash_fields(&dump).as_ref(), Ok(&fields));
        assert_eq!(
            stream::restore(&mut conn, &key, &dump).await.unwrap(),
            fields,
            "Redis decodes it the same"
        );
    }
    // A dump Redis refuses (its checksum broken) is a bad dump, skipped; a refused permission
    // is not (the archiver tries it again).
    let task = b.keys().task(&celeriac::TaskId::parse(ids.first().unwrap()).unwrap());
    let mut dump: Vec<u8> = redis::cmd("DUMP").arg(&task).query_async(&mut conn).await.unwrap();
    *dump.last_mut().unwrap() ^= 0xff;
    let refused = stream::restore(&mut conn, &key, &dump).await.unwrap_err();
    assert!(stream::is_bad_dump(&refused), "{refused:?}");
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("archiver")
        .arg("on")
        .arg(">secret")
        .arg("~*")
        .arg("+@all")
        .arg("-restore")
        .query_async(&mut conn)
        .await
        .unwrap();
    let limited = redis::Client::open(env.redis.url().replacen("redis://", "redis://archiver:secret@", 1)).unwrap();
    let mut limited = limited.get_multiplexed_async_connection().await.unwrap();
    let denied: redis::RedisResult<()> = redis::cmd("RESTORE").arg(&key).arg(0).arg(&dump).query_async(&mut limited).await;
    let denied = denied.unwrap_err();
    assert!(!stream::is_bad_dump(&denied), "{denied:?}");
}

#[test]
fn an_entry_hands_over_its_decoded_dump_its_own_fields_or_a_dump_left_to_redis() {
    let entry = |fields: &[(&str, &[u8])]| fields.iter().map(|(k, v)| ((*k).to_owned(), v.to_vec())).collect();
    // An earlier build's entry: the record's fields themselves.
    let Handover::Fields { id, fields } = stream::handover(entry(&[("_id", b"q-1"), ("s", b"SUCCESS")])) else {
        panic!("fields")
    };
    assert_eq!((id.as_str(), fields["s"].as_str()), ("q-1", "SUCCESS"));
    // A dump of a type this decoder does not know (13: an old ziplist hash).
    let mut old = vec![13u8, 0];
    old.extend([0; 10]);
    assert!(matches!(
        stream::handover(entry(&[("_id", b"q-1"), ("_d", &old)])),
        Handover::Undecoded {
            error: DumpError::UnknownType(13),
            ..
        }
    ));
    assert!(matches!(stream::handover(entry(&[("s", b"SUCCESS")])), Handover::Bad(_)));
}
