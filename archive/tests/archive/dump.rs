//! The archive's decoder of record dumps (src/dump.rs) against real redis-server dumps: every
//! listpack element encoding (integers of each width, strings of each length class), the
//! plain hash encoding of a record with a value over `hash-max-listpack-value`, with LZF
//! compression on and off, and real task records; each decoded exactly as `HGETALL` reads
//! the hash. And Redis' own decoding (`RESTORE`), the archiver's fallback, through a whole
//! archiver pass with a dump in a format the decoder does not know.

use std::collections::HashMap;

use celeriac_archive::dump::{self, DumpError};
use celeriac_archive::stream::{self, Handover};
use celeriac_testkit::RedisServer;

use crate::common::{archived_ids, archiver, env, queue, run_tasks, stream_len};

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
    // A dump of something other than a hash is restored, then refused by the HGETALL: a bad
    // dump too (retried, it would hold its batch back forever), and the restored key is gone.
    let _: () = redis::cmd("SET").arg("a-string").arg("x").query_async(&mut conn).await.unwrap();
    let string_dump: Vec<u8> = redis::cmd("DUMP").arg("a-string").query_async(&mut conn).await.unwrap();
    let refused = stream::restore(&mut conn, &key, &string_dump).await.unwrap_err();
    assert!(stream::is_bad_dump(&refused), "{refused:?}");
    assert!(
        !restored_copy_left(&mut conn, &key).await,
        "the restored key is deleted in the same MULTI"
    );
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
fn an_entry_hands_over_each_task_decoded_its_own_fields_or_a_dump_left_to_redis() {
    let entry = |fields: &[(&str, &[u8])]| fields.iter().map(|(k, v)| ((*k).to_owned(), v.to_vec())).collect();
    // An earlier build's entry: the record's fields themselves.
    let [Handover::Fields { id, fields }] = &stream::handovers(entry(&[("_id", b"q-1"), ("s", b"SUCCESS")]))[..] else {
        panic!("fields")
    };
    assert_eq!((id.as_str(), fields["s"].as_str()), ("q-1", "SUCCESS"));
    // A dump of a type this decoder does not know (13: an old ziplist hash), then a dump it
    // decodes (a listpack of one field, written out by hand), in one entry: two tasks.
    let mut old = vec![13u8, 0];
    old.extend([0; 10]);
    let listpack_dump = LISTPACK_DUMP.to_vec();
    // (The first pair as an entry of the last build named its task id: `_id`.)
    let handed = stream::handovers(entry(&[("_id", b"q-1"), ("_d", &old), ("_i", b"q-2"), ("_d", &listpack_dump)]));
    assert!(matches!(
        &handed[..],
        [
            Handover::Undecoded {
                error: DumpError::UnknownType(13),
                ..
            },
            Handover::Fields { .. }
        ]
    ));
    let Handover::Fields { id, fields } = &handed[1] else {
        unreachable!()
    };
    assert_eq!((id.as_str(), fields["s"].as_str()), ("q-2", "SUCCESS"));
    // Out of order: each task that cannot be read is one Bad, the others still come through.
    let handed = stream::handovers(entry(&[
        ("_d", &listpack_dump),
        ("_i", b"q-3"),
        ("_i", b"q-4"),
        ("_d", &listpack_dump),
        ("_i", b"q-5"),
    ]));
    let kinds: Vec<&str> = handed
        .iter()
        .map(|h| match h {
            Handover::Fields { .. } => "fields",
            Handover::Undecoded { .. } => "undecoded",
            Handover::Bad(_) => "bad",
        })
        .collect();
    assert_eq!(kinds, ["bad", "bad", "fields", "bad"], "{handed:?}");
    assert!(matches!(&stream::handovers(entry(&[("s", b"SUCCESS")]))[..], [Handover::Bad(_)]));
}

/// The dump of a hash `{s: SUCCESS}` as Redis 7.0 writes it (`DUMP` of `HSET h s SUCCESS`,
/// `rdbcompression no`): RDB type 16, the listpack, RDB version 10 and the CRC64.
const LISTPACK_DUMP: [u8; 31] = [
    0x10, 0x13, 0x13, 0x00, 0x00, 0x00, 0x02, 0x00, 0x81, 0x73, 0x02, 0x87, 0x53, 0x55, 0x43, 0x43, 0x45, 0x53, 0x53, 0x08, 0xff, 0x0a,
    0x00, 0x82, 0xa8, 0xde, 0xeb, 0x61, 0xef, 0xd9, 0x2b,
];

#[test]
fn the_hand_built_dumps_carry_redis_own_checksum() {
    let (body, crc) = LISTPACK_DUMP.split_at(LISTPACK_DUMP.len() - 8);
    assert_eq!(crc64(body).to_le_bytes(), crc, "the CRC64 of a dump Redis wrote");
}

/// An entry whose dump this decoder refuses (a hash as a ziplist, RDB type 13, which Redis 7
/// still loads) is archived all the same: Redis decodes it (`RESTORE`), even with the record
/// gone from Redis.
#[tokio::test]
async fn an_entry_only_redis_can_decode_is_archived_through_restore() {
    let env = env().await;
    let b = &env.broker;
    let id = run_tasks(b, 1).await.pop_first().unwrap();
    let mut conn = b.connection();
    let task = b.keys().task(&celeriac::TaskId::parse(&id).unwrap());
    let fields: Vec<(String, String)> = redis::cmd("HGETALL").arg(&task).query_async(&mut conn).await.unwrap();
    let stream = b.keys().archive(&queue());
    let old = ziplist_dump(&fields);
    assert!(matches!(
        &stream::handovers(vec![("_i".into(), id.clone().into_bytes()), ("_d".into(), old.clone())])[..],
        [Handover::Undecoded {
            error: DumpError::UnknownType(13),
            ..
        }]
    ));
    // The entry the finish wrote is replaced by one holding the ziplist dump, and the record
    // deleted: the row can only come from Redis' decoding of that dump.
    let _: () = redis::cmd("DEL").arg(&stream).arg(&task).query_async(&mut conn).await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("_i")
        .arg(&id)
        .arg("_d")
        .arg(&old)
        .query_async(&mut conn)
        .await
        .unwrap();

    assert_eq!(
        archiver(&env, "a1", 10, std::time::Duration::from_secs(30)).step().await.unwrap(),
        1
    );
    assert_eq!(archived_ids(&env.pool).await, [id.clone()].into());
    let (state, args): (String, serde_json::Value) = sqlx::query_as("SELECT state, args FROM celeriac_tasks WHERE task_id = $1")
        .bind(&id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let record: HashMap<String, String> = fields.into_iter().collect();
    assert_eq!(state, record["s"]);
    assert_eq!(args, serde_json::json!({"n": 0}));
    assert_eq!(stream_len(b).await, 0);
    assert!(!restored_copy_left(&mut conn, &stream).await, "the restored copy is deleted");
}

/// Whether the key `stream::restore` restores a dump to (`<stream>:restore`) still exists.
async fn restored_copy_left(conn: &mut impl redis::aio::ConnectionLike, stream: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(format!("{stream}:restore"))
        .query_async(conn)
        .await
        .unwrap()
}

/// Redis' CRC64 (Jones polynomial, reflected), as every dump ends with.
fn crc64(bytes: &[u8]) -> u64 {
    crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(bytes)
}

/// The `DUMP` payload of a hash with these fields as Redis before 7 wrote it: a ziplist
/// (RDB type 13) of field, value, field, value..., every element a string, then RDB version 9
/// and the CRC64.
fn ziplist_dump(fields: &[(String, String)]) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut previous = 0usize;
    let mut tail = 0usize;
    for value in fields.iter().flat_map(|(k, v)| [k, v]) {
        let start = entries.len();
        tail = start;
        // The previous entry's length: one byte under 254, else 0xfe and four bytes.
        if previous < 254 {
            entries.push(previous as u8);
        } else {
            entries.push(0xfe);
            entries.extend((previous as u32).to_le_bytes());
        }
        // A string's length: 6 bits (00pppppp) or 14 bits, big-endian (01pppppp qqqqqqqq).
        let len = value.len();
        if len < 64 {
            entries.push(len as u8);
        } else {
            assert!(len < 16384, "a test value of {len} bytes");
            entries.extend([0x40 | (len >> 8) as u8, len as u8]);
        }
        entries.extend(value.as_bytes());
        previous = entries.len() - start;
    }
    const HEADER: usize = 4 + 4 + 2;
    let total = HEADER + entries.len() + 1;
    let mut ziplist = Vec::with_capacity(total);
    ziplist.extend((total as u32).to_le_bytes());
    ziplist.extend(((HEADER + tail) as u32).to_le_bytes());
    ziplist.extend((2 * fields.len() as u16).to_le_bytes());
    ziplist.extend(entries);
    ziplist.push(0xff);
    // RDB: the type, the ziplist as a string (its length in 6, 14 or 32 bits), version, CRC64.
    let mut dump = vec![13u8];
    match ziplist.len() {
        n if n < 64 => dump.push(n as u8),
        n if n < 16384 => dump.extend([0x40 | (n >> 8) as u8, n as u8]),
        n => {
            dump.push(0x80);
            dump.extend((n as u32).to_be_bytes());
        }
    }
    dump.extend(ziplist);
    dump.extend(9u16.to_le_bytes());
    dump.extend(crc64(&dump).to_le_bytes());
    dump
}
