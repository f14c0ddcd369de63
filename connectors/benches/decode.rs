//! Payload decoding speed: a 10-field click event as bare Avro datums and as JSON objects,
//! decoded into Arrow batches, next to the raw speed of copying the same bytes into an
//! Arrow binary column, in the same run. arrow-avro (what Magnetar uses, through
//! `AvroDecoder`) is compared with apache-avro (a generic `Value` per message, then Arrow
//! builders). Single-threaded, so messages/s is per core.
//!
//! `cargo bench -p magnetar-connectors --bench decode` (`-- --messages N` to change the size).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apache_avro::types::Value;
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::record_batch::RecordBatch;
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use magnetar_connectors::MessageId;
use magnetar_connectors::format::{AvroDecoder, JsonDecoder, JsonOptions, PayloadDecoder};
use magnetar_connectors::pulsar::ReceivedMessage;
use magnetar_connectors::schema::SchemaVersion;

const CLICK: &str = r#"{"type":"record","name":"Click","fields":[
  {"name":"user_id","type":"string"},
  {"name":"session_id","type":"string"},
  {"name":"url","type":"string"},
  {"name":"referrer","type":["null","string"]},
  {"name":"country","type":"string"},
  {"name":"device","type":"string"},
  {"name":"dwell_ms","type":"long"},
  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"premium","type":"boolean"},
  {"name":"score","type":"double"}]}"#;

/// Messages per decode call, as a source chunk.
const CHUNK: usize = 4096;

struct Event {
    user: String,
    session: String,
    url: String,
    referrer: Option<String>,
    country: &'static str,
    device: &'static str,
    dwell_ms: i64,
    ts: i64,
    premium: bool,
    score: f64,
}

fn events(n: usize) -> Vec<Event> {
    const COUNTRIES: [&str; 5] = ["NL", "DE", "FR", "US", "JP"];
    const DEVICES: [&str; 3] = ["mobile", "desktop", "tablet"];
    (0..n)
        .map(|i| Event {
            user: format!("user-{}", i % 10_007),
            session: format!("s-{:08x}", i / 7),
            url: format!("/products/{}/view", i % 997),
            referrer: (i % 3 != 0).then(|| format!("https://search.example/q?{}", i % 101)),
            country: COUNTRIES[i % 5],
            device: DEVICES[i % 3],
            dwell_ms: (i % 5000) as i64,
            ts: 1_700_000_000_000 + i as i64 * 13,
            premium: i % 11 == 0,
            score: (i % 1000) as f64 / 7.0,
        })
        .collect()
}

fn avro_payload(schema: &apache_avro::Schema, e: &Event) -> Vec<u8> {
    let referrer = match &e.referrer {
        Some(r) => Value::Union(1, Box::new(Value::String(r.clone()))),
        None => Value::Union(0, Box::new(Value::Null)),
    };
    let record = Value::Record(vec![
        ("user_id".into(), Value::String(e.user.clone())),
        ("session_id".into(), Value::String(e.session.clone())),
        ("url".into(), Value::String(e.url.clone())),
        ("referrer".into(), referrer),
        ("country".into(), Value::String(e.country.into())),
        ("device".into(), Value::String(e.device.into())),
        ("dwell_ms".into(), Value::Long(e.dwell_ms)),
        ("ts".into(), Value::TimestampMillis(e.ts)),
        ("premium".into(), Value::Boolean(e.premium)),
        ("score".into(), Value::Double(e.score)),
    ]);
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .and_then(|w| w.write_value_to_vec(record))
        .expect("encode")
}

fn json_payload(e: &Event) -> Vec<u8> {
    serde_json::json!({
        "user_id": e.user, "session_id": e.session, "url": e.url, "referrer": e.referrer,
        "country": e.country, "device": e.device, "dwell_ms": e.dwell_ms,
        "ts": e.ts, "premium": e.premium, "score": e.score,
    })
    .to_string()
    .into_bytes()
}

fn messages(payloads: Vec<Vec<u8>>) -> Vec<ReceivedMessage> {
    let topic: Arc<str> = Arc::from("persistent://public/default/clicks");
    let producer: Arc<str> = Arc::from("bench");
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            ReceivedMessage::local(
                MessageId::new(1, i as u64, -1),
                topic.clone(),
                producer.clone(),
                Bytes::from(p),
            )
        })
        .collect()
}

/// Runs `decode` over all messages in chunks; returns the best of 3 runs and the row count.
fn measure(
    messages: &[ReceivedMessage],
    mut decode: impl FnMut(&[ReceivedMessage]) -> usize,
) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut rows = 0;
    for _ in 0..3 {
        let start = Instant::now();
        rows = 0;
        for chunk in messages.chunks(CHUNK) {
            rows += decode(chunk);
        }
        best = best.min(start.elapsed());
    }
    (best, rows)
}

/// apache-avro: one generic `Value` per message, then Arrow builders.
fn apache_avro_to_arrow(schema: &apache_avro::Schema, chunk: &[ReceivedMessage]) -> RecordBatch {
    let n = chunk.len();
    let mut user = StringBuilder::with_capacity(n, n * 12);
    let mut session = StringBuilder::with_capacity(n, n * 12);
    let mut url = StringBuilder::with_capacity(n, n * 20);
    let mut referrer = StringBuilder::with_capacity(n, n * 24);
    let mut country = StringBuilder::with_capacity(n, n * 2);
    let mut device = StringBuilder::with_capacity(n, n * 7);
    let mut dwell = Int64Builder::with_capacity(n);
    let mut ts = TimestampMillisecondBuilder::with_capacity(n).with_timezone("+00:00");
    let mut premium = BooleanBuilder::with_capacity(n);
    let mut score = Float64Builder::with_capacity(n);
    let datums = apache_avro::reader::datum::GenericDatumReader::builder(schema)
        .build()
        .expect("reader");
    for m in chunk {
        let mut reader: &[u8] = &m.payload;
        let value = datums.read_value(&mut reader).expect("datum");
        let Value::Record(fields) = value else {
            panic!("not a record")
        };
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Union(_, inner) => match inner.as_ref() {
                Value::String(s) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        };
        user.append_option(text(&fields[0].1));
        session.append_option(text(&fields[1].1));
        url.append_option(text(&fields[2].1));
        referrer.append_option(text(&fields[3].1));
        country.append_option(text(&fields[4].1));
        device.append_option(text(&fields[5].1));
        match (&fields[6].1, &fields[7].1, &fields[8].1, &fields[9].1) {
            (Value::Long(d), Value::TimestampMillis(t), Value::Boolean(p), Value::Double(s)) => {
                dwell.append_value(*d);
                ts.append_value(*t);
                premium.append_value(*p);
                score.append_value(*s);
            }
            other => panic!("unexpected values {other:?}"),
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(user.finish()),
        Arc::new(session.finish()),
        Arc::new(url.finish()),
        Arc::new(referrer.finish()),
        Arc::new(country.finish()),
        Arc::new(device.finish()),
        Arc::new(dwell.finish()),
        Arc::new(ts.finish()),
        Arc::new(premium.finish()),
        Arc::new(score.finish()),
    ];
    RecordBatch::try_new(click_arrow_schema(), columns).expect("batch")
}

fn click_arrow_schema() -> Arc<Schema> {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("user_id", false),
        text("session_id", false),
        text("url", false),
        text("referrer", true),
        text("country", false),
        text("device", false),
        Field::new("dwell_ms", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
            false,
        ),
        Field::new("premium", DataType::Boolean, false),
        Field::new("score", DataType::Float64, false),
    ]))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .iter()
        .position(|a| a == "--messages")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let schema = apache_avro::Schema::parse_str(CLICK).expect("schema");
    let events = events(n);
    let avro = messages(events.iter().map(|e| avro_payload(&schema, e)).collect());
    let json = messages(events.iter().map(json_payload).collect());
    drop(events);
    let bytes = |ms: &[ReceivedMessage]| ms.iter().map(|m| m.payload.len()).sum::<usize>();
    let (avro_bytes, json_bytes) = (bytes(&avro), bytes(&json));

    let raw_copy = |chunk: &[ReceivedMessage]| {
        let total: usize = chunk.iter().map(|m| m.payload.len()).sum();
        let mut b = BinaryBuilder::with_capacity(chunk.len(), total);
        for m in chunk {
            b.append_value(&m.payload);
        }
        arrow::array::Array::len(&black_box(b.finish()))
    };
    let mut results: Vec<(&str, &str, Duration, usize, usize)> = Vec::new();
    let (t, rows) = measure(&avro, raw_copy);
    results.push(("Avro", "raw copy into a binary column", t, rows, avro_bytes));
    let mut arrow_avro = AvroDecoder::new(CLICK, SchemaVersion(0)).expect("decoder");
    let (t, rows) = measure(&avro, |chunk| {
        black_box(arrow_avro.decode(chunk).expect("decode"))
            .rows
            .len()
    });
    results.push(("Avro", "arrow-avro (Magnetar)", t, rows, avro_bytes));
    let (t, rows) = measure(&avro, |chunk| {
        black_box(apache_avro_to_arrow(&schema, chunk)).num_rows()
    });
    results.push(("Avro", "apache-avro Value -> Arrow", t, rows, avro_bytes));
    let (t, rows) = measure(&json, raw_copy);
    results.push(("JSON", "raw copy into a binary column", t, rows, json_bytes));
    let mut json_decoder =
        JsonDecoder::new(click_arrow_schema(), JsonOptions::default()).expect("decoder");
    let (t, rows) = measure(&json, |chunk| {
        black_box(json_decoder.decode(chunk).expect("decode"))
            .rows
            .len()
    });
    results.push(("JSON", "arrow-json (Magnetar)", t, rows, json_bytes));

    println!(
        "Decoding {n} click events (10 fields; Avro {:.0} B, JSON {:.0} B per message), {CHUNK} per call, best of 3, one core:",
        avro_bytes as f64 / n as f64,
        json_bytes as f64 / n as f64
    );
    println!(
        "| payload | decoder | messages/s per core | MB/s | vs raw copy |\n|---|---|---:|---:|---:|"
    );
    let mut raw = Duration::ZERO;
    for (format, decoder, t, rows, bytes) in results {
        assert_eq!(rows, n, "{decoder} decoded every message");
        if decoder.starts_with("raw") {
            raw = t;
        }
        let secs = t.as_secs_f64();
        println!(
            "| {format} | {decoder} | {:.2} M | {:.0} | {:.1}x |",
            n as f64 / secs / 1e6,
            bytes as f64 / secs / 1e6,
            secs / raw.as_secs_f64()
        );
    }
}
