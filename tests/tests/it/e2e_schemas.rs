//! Tables whose columns come from Pulsar's Schema Registry. The official Python client
//! produces with its typed schemas (AvroSchema, JsonSchema, String, and KeyValue payloads laid
//! out as Java's KeyValueSchema writes them) and registers each schema in the registry
//! fixture (`tests/python/admin_rest.py`), since pulsar-lite has no registry. Typed sink
//! output is read back by the Python client with AvroSchema / JsonSchema.

use std::collections::BTreeMap;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::json::ArrayWriter;
use futures::StreamExt;
use magnetar::{Engine, EngineConfig};
use magnetar_tests::*;
use serde_json::{Value, json};

const N: usize = 120;

/// The records the Python producer sends: keys, properties and event times set by the
/// client, and Click values with NULLs in the optional fields.
fn records() -> Vec<Value> {
    (0..N)
        .map(|i| {
            let user = format!("user-{}", i % 7);
            json!({
                "key": user,
                "properties": {"src": format!("s{}", i % 3), "n": i.to_string()},
                "event_time": 1_700_000_000_000u64 + i as u64 * 1_000,
                "value": {
                    "user_id": user,
                    "url": if i % 5 == 0 { Value::Null } else { json!(format!("/p/{i}")) },
                    "dwell_ms": i as i64 * 10,
                    "country": if i % 4 == 0 { Value::Null } else { json!("NL") },
                    "premium": i % 2 == 0,
                    "score": i as f64 / 4.0,
                },
                "key_value": {"user_id": user, "region": format!("r{}", i % 2)},
            })
        })
        .collect()
}

/// Rows of a query as JSON objects (arrow-json's form: NULL fields are left out).
async fn rows(engine: &Engine, sql: &str) -> Vec<serde_json::Map<String, Value>> {
    let batches: Vec<RecordBatch> = engine
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .map(|b| b.expect("query batch"))
        .collect()
        .await;
    json_rows(&batches)
}

/// What `DESCRIBE table` prints, as JSON objects.
async fn describe(engine: &Engine, table: &str) -> Vec<serde_json::Map<String, Value>> {
    let outputs = engine
        .execute(&format!("DESCRIBE {table}"))
        .await
        .expect("describe");
    match outputs.into_iter().next() {
        Some(magnetar::StatementOutput::Table(batches)) => json_rows(&batches),
        other => panic!("DESCRIBE gave {other:?}"),
    }
}

fn json_rows(batches: &[RecordBatch]) -> Vec<serde_json::Map<String, Value>> {
    let mut writer = ArrayWriter::new(Vec::new());
    for b in batches {
        writer.write(b).expect("json");
    }
    writer.finish().expect("json");
    let text = String::from_utf8(writer.into_inner()).expect("utf-8");
    if text.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str(&text).expect("json rows")
}

/// The Click fields of a record as arrow-json writes them (NULL fields left out).
fn click_fields(value: &Value) -> serde_json::Map<String, Value> {
    value
        .as_object()
        .expect("object")
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn with_options(topic: &str, url: &str, admin: &str) -> String {
    format!(
        "'connector' = 'pulsar', 'topics' = '{topic}', 'service-url' = '{url}', 'admin-url' = '{admin}', 'source.stop.at-message-id' = 'latest'"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn avro_columns_come_from_the_registry_with_metadata_columns() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let registry = AdminRestFixture::start();
    let admin = registry.admin_url();
    let topic = unique_topic("avro-clicks");
    let input = records();
    let ids = python_produce_typed(&url, &registry, &topic, "avro", &input);
    assert_eq!(ids.len(), N);
    let engine = Engine::new(EngineConfig::with_service_url(url.clone()));

    // No column list at all: the columns are the Avro record's fields.
    engine
        .execute(&format!(
            "CREATE TABLE plain WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect("create from the registry");
    let described = describe(&engine, "plain").await;
    let columns: Vec<(String, String, String)> = described
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["type"].as_str().unwrap_or_default().to_string(),
                r["null"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected_columns: Vec<(String, String, String)> = [
        ("user_id", "STRING", "NO"),
        ("url", "STRING", "YES"),
        ("dwell_ms", "BIGINT", "YES"),
        ("country", "STRING", "YES"),
        ("premium", "BOOLEAN", "YES"),
        ("score", "DOUBLE", "YES"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(columns, expected_columns);
    assert_eq!(described[0]["source"], "value (AVRO schema v0)");

    let got = rows(&engine, "SELECT * FROM plain ORDER BY dwell_ms").await;
    let want: Vec<_> = input.iter().map(|r| click_fields(&r["value"])).collect();
    assert_eq!(got, want);

    // Metadata columns next to the registry's columns, and a watermark on event time.
    engine
        .execute(&format!(
            "CREATE TABLE clicks (
               k STRING METADATA FROM 'key',
               props MAP<STRING, STRING> METADATA FROM 'properties',
               et TIMESTAMP_LTZ(3) METADATA FROM 'event_time',
               pt TIMESTAMP_LTZ(3) METADATA FROM 'publish_time' VIRTUAL,
               mid STRING METADATA FROM 'message_id' VIRTUAL,
               producer STRING METADATA FROM 'producer_name' VIRTUAL,
               tp STRING METADATA FROM 'topic' VIRTUAL,
               seq BIGINT METADATA FROM 'sequence_id' VIRTUAL,
               WATERMARK FOR et AS et - INTERVAL '5' SECOND
             ) WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect("create with metadata columns");
    let got = rows(
        &engine,
        "SELECT user_id, dwell_ms, k, props, CAST(et AS BIGINT) AS et, CAST(pt AS BIGINT) AS pt, mid, producer, tp, seq FROM clicks",
    )
    .await;
    let broker_view = python_read_all(&url, &topic);
    let publish: BTreeMap<String, u64> = broker_view
        .iter()
        .map(|m| (m.magnetar_id(), m.publish_time))
        .collect();
    assert_eq!(got.len(), N);
    // Rows in the order the producer sent them, by the id each send returned.
    let by_id: BTreeMap<&str, &serde_json::Map<String, Value>> = got
        .iter()
        .map(|r| (r["mid"].as_str().unwrap_or_default(), r))
        .collect();
    assert_eq!(by_id.len(), N, "every message once");
    for (i, record) in input.iter().enumerate() {
        let row = by_id
            .get(ids[i].as_str())
            .unwrap_or_else(|| panic!("no row for message {}", ids[i]));
        assert_eq!(row["user_id"], record["value"]["user_id"], "row {i}");
        assert_eq!(row["dwell_ms"], record["value"]["dwell_ms"], "row {i}");
        assert_eq!(row["k"], record["key"], "row {i}");
        assert_eq!(row["props"], record["properties"], "row {i}");
        assert_eq!(row["et"], record["event_time"], "row {i}");
        assert_eq!(
            row["mid"],
            json!(ids[i]),
            "row {i}: the id the producer got"
        );
        assert_eq!(
            row["pt"].as_u64(),
            publish.get(&ids[i]).copied(),
            "row {i}: the broker's publish time"
        );
        assert!(row["producer"].as_str().is_some_and(|p| !p.is_empty()));
        assert_eq!(row["tp"], json!(topic), "row {i}");
        // The Python producer numbers its messages from 0.
        assert_eq!(row["seq"], json!(i), "row {i}: the producer's sequence id");
    }

    // The producer's event time carries the watermark: 1 s apart, so 10 per 10-second window.
    let windows = rows(
        &engine,
        "SELECT CAST(window_start AS BIGINT) AS ws, count(*) AS n
         FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(et), INTERVAL '10' SECOND))
         GROUP BY window_start, window_end ORDER BY ws",
    )
    .await;
    let want: Vec<Value> = (0..N as u64 / 10)
        .map(|w| json!({"ws": 1_700_000_000_000u64 + w * 10_000, "n": 10}))
        .collect();
    assert_eq!(
        windows.into_iter().map(Value::Object).collect::<Vec<_>>(),
        want
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_string_and_key_value_schemas_decode_what_python_wrote() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let registry = AdminRestFixture::start();
    let admin = registry.admin_url();
    let input = records();
    let engine = Engine::new(EngineConfig::with_service_url(url.clone()));
    let want_clicks: Vec<_> = input.iter().map(|r| click_fields(&r["value"])).collect();

    // JSON: the registry holds an Avro record schema describing the objects.
    let topic = unique_topic("json-clicks");
    python_produce_typed(&url, &registry, &topic, "json", &input);
    engine
        .execute(&format!(
            "CREATE TABLE j WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect("json table");
    assert_eq!(
        rows(&engine, "SELECT * FROM j ORDER BY dwell_ms").await,
        want_clicks
    );

    // STRING: one `value` column.
    let topic = unique_topic("strings");
    let texts: Vec<Value> = input
        .iter()
        .map(|r| json!({"key": r["key"], "value": format!("héllo {}", r["value"]["dwell_ms"])}))
        .collect();
    python_produce_typed(&url, &registry, &topic, "string", &texts);
    engine
        .execute(&format!(
            "CREATE TABLE s WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect("string table");
    let got = rows(&engine, "SELECT value FROM s ORDER BY value").await;
    let mut want: Vec<String> = texts
        .iter()
        .map(|t| t["value"].as_str().unwrap_or_default().to_string())
        .collect();
    want.sort();
    assert_eq!(
        got.iter()
            .map(|r| r["value"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>(),
        want
    );

    // KEY_VALUE INLINE: an AVRO key record and a JSON value record side by side; the key's
    // `user_id` becomes `key_user_id` next to the value's.
    let topic = unique_topic("kv-inline");
    python_produce_typed(&url, &registry, &topic, "kv-inline", &input);
    engine
        .execute(&format!(
            "CREATE TABLE kvi WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect("kv inline table");
    let got = rows(&engine, "SELECT * FROM kvi ORDER BY dwell_ms").await;
    let want: Vec<_> = input
        .iter()
        .map(|r| {
            let mut row = serde_json::Map::new();
            row.insert("key_user_id".into(), r["key_value"]["user_id"].clone());
            row.insert("region".into(), r["key_value"]["region"].clone());
            row.extend(click_fields(&r["value"]));
            row
        })
        .collect();
    assert_eq!(got, want);

    // KEY_VALUE SEPARATED: a STRING key in the message key, an AVRO value as the payload.
    let topic = unique_topic("kv-separated");
    python_produce_typed(&url, &registry, &topic, "kv-separated", &input);
    engine
        .execute(&format!(
            "CREATE TABLE kvs WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect("kv separated table");
    let got = rows(&engine, "SELECT * FROM kvs ORDER BY dwell_ms").await;
    let want: Vec<_> = input
        .iter()
        .map(|r| {
            let mut row = serde_json::Map::new();
            row.insert("key".into(), r["key"].clone());
            row.extend(click_fields(&r["value"]));
            row
        })
        .collect();
    assert_eq!(got, want);
}

const V1: &str = r#"{"type":"record","name":"Click","fields":[
    {"name":"user_id","type":"string"},{"name":"clicks","type":"long"},
    {"name":"legacy","type":"string"}]}"#;
/// v2 removes `legacy` and adds `country` with a default.
const V2: &str = r#"{"type":"record","name":"Click","fields":[
    {"name":"user_id","type":"string"},{"name":"clicks","type":"long"},
    {"name":"country","type":["null","string"],"default":null}]}"#;

fn datum(schema: &str, fields: Vec<(&str, apache_avro::types::Value)>) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(schema).expect("schema");
    let record = apache_avro::types::Value::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    );
    apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .expect("writer")
        .write_value_to_vec(record)
        .expect("datum")
}

/// Sends payloads with the schema versions a real broker would have assigned (pulsar-lite
/// answers a producer's schema with an empty version, so the test sets them per message, as
/// the Java producer copies the broker's version into each message).
async fn produce_versioned(url: &str, topic: &str, messages: Vec<(i64, Vec<u8>)>) {
    use pulsar::{Pulsar, TokioExecutor, producer};
    let client: Pulsar<TokioExecutor> = Pulsar::builder(url, TokioExecutor)
        .build()
        .await
        .expect("client");
    let mut producer = client
        .producer()
        .with_topic(topic)
        .build()
        .await
        .expect("producer");
    for (version, payload) in messages {
        producer
            .send_non_blocking(producer::Message {
                payload,
                schema_version: Some(version.to_be_bytes().to_vec()),
                ..Default::default()
            })
            .await
            .expect("send")
            .await
            .expect("receipt");
    }
    producer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn evolved_versions_read_into_one_table_and_bad_messages_follow_the_policy() {
    use apache_avro::types::Value as Avro;
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let registry = AdminRestFixture::start();
    let admin = registry.admin_url();
    let topic = unique_topic("evolving");
    // Version 1 is of another kind (a producer with a Protobuf schema once registered it).
    assert_eq!(registry.register(&topic, "AVRO", V1).await, 0);
    assert_eq!(registry.register(&topic, "PROTOBUF_NATIVE", "{}").await, 1);
    assert_eq!(registry.register(&topic, "AVRO", V2).await, 2);

    let v1 = |u: &str, c: i64| {
        (
            0,
            datum(
                V1,
                vec![
                    ("user_id", Avro::String(u.into())),
                    ("clicks", Avro::Long(c)),
                    ("legacy", Avro::String("old".into())),
                ],
            ),
        )
    };
    let v2 = |u: &str, c: i64, country: &str| {
        (
            2,
            datum(
                V2,
                vec![
                    ("user_id", Avro::String(u.into())),
                    ("clicks", Avro::Long(c)),
                    (
                        "country",
                        Avro::Union(1, Box::new(Avro::String(country.into()))),
                    ),
                ],
            ),
        )
    };
    produce_versioned(
        &url,
        &topic,
        vec![
            v1("ann", 1),
            v2("bob", 2, "NL"),
            v1("cy", 3),
            v2("dee", 4, "FR"),
        ],
    )
    .await;

    let engine = Engine::new(EngineConfig::with_service_url(url.clone()));
    engine
        .execute(&format!(
            "CREATE TABLE clicks WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect("create");
    let got = rows(&engine, "SELECT * FROM clicks ORDER BY clicks").await;
    let want = vec![
        json!({"user_id": "ann", "clicks": 1}),
        json!({"user_id": "bob", "clicks": 2, "country": "NL"}),
        json!({"user_id": "cy", "clicks": 3}),
        json!({"user_id": "dee", "clicks": 4, "country": "FR"}),
    ];
    assert_eq!(
        got.into_iter().map(Value::Object).collect::<Vec<_>>(),
        want,
        "v1 rows read with v2's default, v2 rows as written"
    );

    // Bad input: a version the registry does not have, a datum that does not match its
    // version's schema, and a version whose schema is of another kind.
    let good_tail = v2("eve", 5, "DE");
    let mut truncated = v1("zed", 9);
    truncated.1.truncate(3);
    produce_versioned(
        &url,
        &topic,
        vec![
            (7, good_tail.1.clone()),
            truncated,
            (1, good_tail.1.clone()),
            good_tail,
        ],
    )
    .await;
    let ids: Vec<String> = python_read_all(&url, &topic)
        .iter()
        .map(|m| m.magnetar_id())
        .collect();
    assert_eq!(ids.len(), 8);

    // Default policy: the query fails naming the table, topic and message id.
    let err = engine
        .query("SELECT count(*) FROM clicks")
        .await
        .expect("planned")
        .map(|b| b.map(|_| ()))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .find_map(Result::err)
        .expect("a bad message fails the query")
        .to_string();
    assert!(err.contains("unknown schema version 7"), "{err}");
    assert!(err.contains(&format!("message {}", ids[4])), "{err}");
    assert!(err.contains(&topic), "{err}");

    // 'value.ignore-parse-errors': skipped and counted; the good rows are all there.
    engine
        .execute(&format!(
            "CREATE TABLE lenient WITH ({}, 'value.ignore-parse-errors' = 'true');
             CREATE TABLE sink_a (user_id STRING, clicks BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{}', 'service-url' = '{url}');
             INSERT INTO sink_a SELECT user_id, clicks FROM lenient",
            with_options(&topic, &url, &admin),
            unique_topic("lenient-out")
        ))
        .await
        .expect("lenient job");
    let jobs = engine.wait_for_jobs().await;
    let job = jobs.last().expect("job");
    assert_eq!(job.state, magnetar::JobState::Finished, "{:?}", job.state);
    assert_eq!(job.messages_skipped, 3);
    assert_eq!(job.messages_written, 5);

    // A dead-letter topic: the three go there, with the reason and their place.
    let dead = unique_topic("dead-letters");
    engine
        .execute(&format!(
            "CREATE TABLE routed WITH ({}, 'source.dead-letter-topic' = '{dead}');
             CREATE TABLE sink_b (user_id STRING, clicks BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{}', 'service-url' = '{url}');
             INSERT INTO sink_b SELECT user_id, clicks FROM routed",
            with_options(&topic, &url, &admin),
            unique_topic("routed-out")
        ))
        .await
        .expect("routed job");
    let jobs = engine.wait_for_jobs().await;
    let job = jobs.last().expect("job");
    assert_eq!(job.state, magnetar::JobState::Finished, "{:?}", job.state);
    assert_eq!(job.messages_dead_lettered, 3);
    assert_eq!(job.messages_written, 5);
    let letters = python_read_all(&url, &dead);
    let places: Vec<&str> = letters
        .iter()
        .map(|m| {
            m.properties["magnetar-source-message-id"]
                .as_str()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(places, [&ids[4], &ids[5], &ids[6]]);
    let reasons: Vec<&str> = letters
        .iter()
        .map(|m| m.properties["magnetar-error"].as_str().unwrap_or_default())
        .collect();
    assert!(
        reasons[0].contains("unknown schema version 7"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("schema version 0"), "{reasons:?}");
    assert!(reasons[2].contains("PROTOBUF_NATIVE"), "{reasons:?}");
    assert!(
        letters
            .iter()
            .all(|m| m.properties["magnetar-source-topic"] == json!(topic))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_columns_win_and_must_fit_the_registry_schema() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let registry = AdminRestFixture::start();
    let admin = registry.admin_url();
    let topic = unique_topic("declared");
    let input = records();
    python_produce_typed(&url, &registry, &topic, "avro", &input[..10]);
    let engine = Engine::new(EngineConfig::with_service_url(url.clone()));

    // A subset, in another order, with a wider type: read by name from the writer's datums.
    engine
        .execute(&format!(
            "CREATE TABLE c (score DOUBLE, user_id STRING, dwell_ms DECIMAL(20, 0)) WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect("declared subset");
    let got = rows(&engine, "SELECT user_id, score FROM c ORDER BY score").await;
    let want: Vec<Value> = input[..10]
        .iter()
        .map(|r| json!({"user_id": r["value"]["user_id"], "score": r["value"]["score"]}))
        .collect();
    assert_eq!(got.into_iter().map(Value::Object).collect::<Vec<_>>(), want);

    let err = engine
        .execute(&format!(
            "CREATE TABLE bad1 (user_id STRING, dwell BIGINT) WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect_err("no such field")
        .to_string();
    assert!(
        err.contains("column 'dwell' is not a field of the AVRO schema of topic"),
        "{err}"
    );
    assert!(err.contains("dwell_ms"), "lists the fields: {err}");
    let err = engine
        .execute(&format!(
            "CREATE TABLE bad2 (premium TIMESTAMP(3)) WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect_err("incompatible type")
        .to_string();
    assert!(
        err.contains("column 'premium' is declared TIMESTAMP(3), but the AVRO schema of topic")
            && err.contains("has it as BOOLEAN"),
        "{err}"
    );

    // Narrowing would turn values that do not fit into NULLs: refused.
    let err = engine
        .execute(&format!(
            "CREATE TABLE bad3 (dwell_ms INT) WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect_err("narrowing")
        .to_string();
    assert!(
        err.contains("column 'dwell_ms' is declared INT") && err.contains("has it as BIGINT"),
        "{err}"
    );

    // A topic with no registry entry and no columns: said so, naming the topic.
    let empty = unique_topic("no-schema");
    let err = engine
        .execute(&format!(
            "CREATE TABLE none WITH ({})",
            with_options(&empty, &url, &admin)
        ))
        .await
        .expect_err("no schema")
        .to_string();
    assert!(
        err.contains(&format!("topic '{empty}' has no schema")),
        "{err}"
    );

    // An unsupported latest kind is an error at CREATE TABLE, naming the topic.
    let external = unique_topic("external");
    registry.register(&external, "EXTERNAL", "").await;
    let err = engine
        .execute(&format!(
            "CREATE TABLE ext WITH ({})",
            with_options(&external, &url, &admin)
        ))
        .await
        .expect_err("unsupported kind")
        .to_string();
    assert!(
        err.contains(&format!("the schema of topic '{external}' cannot be read"))
            && err.contains("EXTERNAL"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_admin_url_the_broker_is_asked_and_silence_is_a_clear_error() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let engine = Engine::new(EngineConfig::with_service_url(url.clone()));
    let topic = unique_topic("no-admin");
    let started = std::time::Instant::now();
    let err = engine
        .execute(&format!(
            "CREATE TABLE t WITH ('connector' = 'pulsar', 'topics' = '{topic}')"
        ))
        .await
        .expect_err("pulsar-lite does not answer GetSchema")
        .to_string();
    assert!(
        err.contains(&format!(
            "did not answer GetSchema for topic '{topic}' within 5000 ms"
        )) && err.contains("'admin-url'"),
        "{err}"
    );
    // The short timeout, not the client's 30 s operation timeout.
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Rows the Python client decoded with `AvroSchema(Alert)` / `JsonSchema(Alert)`.
fn python_read_typed(url: &str, topic: &str, kind: &str) -> Vec<Value> {
    let output = run_python("read_typed.py", &[url, topic, kind]);
    let mut rows: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    rows.sort_by_key(|r| r["user_id"].as_str().unwrap_or_default().to_string());
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_sinks_are_read_by_python_avro_and_json_schemas() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let registry = AdminRestFixture::start();
    let admin = registry.admin_url();
    let topic = unique_topic("sink-input");
    let input = records();
    python_produce_typed(&url, &registry, &topic, "avro", &input);
    let engine = Engine::new(EngineConfig::with_service_url(url.clone()));
    engine
        .execute(&format!(
            "CREATE TABLE clicks (et TIMESTAMP_LTZ(3) METADATA FROM 'event_time') WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect("source");

    let mut per_user: BTreeMap<String, (i64, i64, u64)> = BTreeMap::new();
    for r in &input {
        let user = r["value"]["user_id"].as_str().unwrap_or_default();
        let e = per_user.entry(user.to_string()).or_default();
        e.0 += 1;
        e.1 += r["value"]["dwell_ms"].as_i64().unwrap_or(0);
        e.2 = e.2.max(r["event_time"].as_u64().unwrap_or(0));
    }
    let want: Vec<Value> = per_user
        .iter()
        .map(|(u, (c, d, _))| json!({"user_id": u, "clicks": c, "total_dwell": d}))
        .collect();
    // What the sink's writable metadata columns put on each message.
    let want_messages: Vec<Value> = per_user
        .iter()
        .map(|(u, (c, d, t))| {
            json!({"user_id": u, "clicks": c, "total_dwell": d, "key": u, "event_time": t,
                   "properties": {"clicks": c.to_string()}})
        })
        .collect();

    for format in ["avro", "json"] {
        let out = unique_topic(&format!("alerts-{format}"));
        engine
            .execute(&format!(
                "CREATE TABLE alerts_{format} (
                   user_id STRING NOT NULL, clicks BIGINT NOT NULL, total_dwell BIGINT,
                   k STRING METADATA FROM 'key',
                   et TIMESTAMP_LTZ(3) METADATA FROM 'event_time',
                   props MAP<STRING, STRING> METADATA FROM 'properties')
                 WITH ('connector' = 'pulsar', 'topics' = '{out}', 'service-url' = '{url}', 'format' = '{format}');
                 INSERT INTO alerts_{format}
                 SELECT user_id, count(*), sum(dwell_ms), user_id AS k, max(et),
                        map(['clicks'], [CAST(count(*) AS STRING)])
                 FROM clicks GROUP BY user_id"
            ))
            .await
            .expect("job");
        let jobs = engine.wait_for_jobs().await;
        let job = jobs.last().expect("job");
        assert_eq!(job.state, magnetar::JobState::Finished, "{:?}", job.state);
        assert_eq!(
            python_read_typed(&url, &out, format),
            want_messages,
            "{format}"
        );

        // And read back by Magnetar from the declared columns alone ('format', no registry).
        engine
            .execute(&format!(
                "CREATE TABLE back_{format} (user_id STRING NOT NULL, clicks BIGINT NOT NULL, total_dwell BIGINT)
                 WITH ('connector' = 'pulsar', 'topics' = '{out}', 'service-url' = '{url}', 'format' = '{format}', 'source.stop.at-message-id' = 'latest')"
            ))
            .await
            .expect("read-back table");
        let back = rows(
            &engine,
            &format!("SELECT * FROM back_{format} ORDER BY user_id"),
        )
        .await;
        assert_eq!(
            back.into_iter().map(Value::Object).collect::<Vec<_>>(),
            want,
            "{format} read back"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn protobuf_native_messages_decode_dynamically_from_the_descriptor() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let registry = AdminRestFixture::start();
    let admin = registry.admin_url();
    let topic = unique_topic("protobuf");
    let devices = ["DEVICE_UNKNOWN", "MOBILE", "DESKTOP"];
    let input: Vec<Value> = (0..40)
        .map(|i| {
            json!({"value": {
                "user_id": format!("user-{}", i % 3),
                "dwell_ms": i * 100,
                "premium": i % 2 == 0,
                "score": i as f64 / 8.0,
                "device": devices[i % 3],
                "referrer": if i % 4 == 0 { Value::Null } else { json!({"host": "search.example", "path": format!("/q/{i}")}) },
                "tags": (0..i % 3).map(|t| format!("t{t}")).collect::<Vec<_>>(),
                "ts_seconds": 1_700_000_000 + i,
                "country": if i % 5 == 0 { Value::Null } else { json!("NL") },
            }})
        })
        .collect();
    python_produce_typed(&url, &registry, &topic, "protobuf", &input);
    let engine = Engine::new(EngineConfig::with_service_url(url.clone()));
    engine
        .execute(&format!(
            "CREATE TABLE p WITH ({})",
            with_options(&topic, &url, &admin)
        ))
        .await
        .expect("protobuf table");
    let types: Vec<(String, String)> = describe(&engine, "p")
        .await
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(types[0], ("user_id".to_string(), "STRING".to_string()));
    assert_eq!(types[1], ("dwell_ms".to_string(), "BIGINT".to_string()));
    assert!(types[5].1.starts_with("ROW<"), "{types:?}");
    assert!(types[6].1.starts_with("ARRAY<"), "{types:?}");
    let got = rows(
        &engine,
        "SELECT user_id, dwell_ms, premium, score, device, referrer, tags, CAST(ts AS BIGINT) AS ts, country FROM p ORDER BY dwell_ms",
    )
    .await;
    let want: Vec<serde_json::Map<String, Value>> = input
        .iter()
        .map(|r| {
            let v = &r["value"];
            let mut row = serde_json::Map::new();
            for key in [
                "user_id", "dwell_ms", "premium", "score", "device", "referrer", "tags", "country",
            ] {
                if !v[key].is_null() {
                    row.insert(key.into(), v[key].clone());
                }
            }
            let ts = v["ts_seconds"].as_i64().unwrap_or(0) * 1_000_000_000 + 5;
            row.insert("ts".into(), json!(ts));
            row
        })
        .collect();
    assert_eq!(got, want);

    // The same messages without a registry: 'format' = 'protobuf' with a descriptor file,
    // declared columns read by field name.
    let dir = tempfile::tempdir().expect("tempdir");
    let descriptor = dir.path().join("click.desc");
    let descriptor = descriptor.to_str().expect("utf-8 path");
    run_python("write_descriptor.py", &[descriptor]);
    let options = format!(
        "'connector' = 'pulsar', 'topics' = '{topic}', 'service-url' = '{url}', 'source.stop.at-message-id' = 'latest', 'format' = 'protobuf', 'protobuf.descriptor-file' = '{descriptor}'"
    );
    engine
        .execute(&format!(
            "CREATE TABLE d (device STRING, user_id STRING, dwell_ms BIGINT, tags ARRAY<STRING>) WITH ({options}, 'protobuf.message-name' = 'shop.Click')"
        ))
        .await
        .expect("declared protobuf table");
    let got = rows(&engine, "SELECT * FROM d ORDER BY dwell_ms").await;
    let want: Vec<serde_json::Map<String, Value>> = want
        .iter()
        .map(|r| {
            ["device", "user_id", "dwell_ms", "tags"]
                .iter()
                .map(|k| (k.to_string(), r[*k].clone()))
                .collect()
        })
        .collect();
    assert_eq!(got, want);
    let err = engine
        .execute(&format!(
            "CREATE TABLE e (user_id STRING) WITH ({options}, 'protobuf.message-name' = 'shop.Clik')"
        ))
        .await
        .expect_err("bad message name")
        .to_string();
    assert!(
        err.contains("has no message 'shop.Clik' (it has: ") && err.contains("shop.Click"),
        "{err}"
    );
    let err = engine
        .execute(&format!(
            "CREATE TABLE f (user BIGINT) WITH ({options}, 'protobuf.message-name' = 'shop.Click')"
        ))
        .await
        .expect_err("no such field")
        .to_string();
    assert!(
        err.contains("column 'user' is not a field of protobuf message 'shop.Click'"),
        "{err}"
    );
}
