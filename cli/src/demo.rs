//! `magnetar demo`: an embedded broker, a click generator (with a few scripted clients), the
//! clickstream job's 10-second tumbling windows and failed-login pattern, and the alerts it
//! writes, printed as they arrive; then a clean shutdown.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use magnetar::{Engine, EngineConfig, StatementOutput};
use magnetar_connectors::pulsar::{
    OutgoingMessage, PulsarSink, RoutingMode, SinkConfig, TopicName,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::args::OutputFormat;
use crate::render::print_batches;

/// The job the demo runs.
pub const CLICKSTREAM_SQL: &str = include_str!("../examples/clickstream.sql");

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14) Chrome/131.0 Mobile",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1) Mobile/15E148",
    "python-requests/2.32.3",
];
const URLS: &[&str] = &[
    "/",
    "/search?q=shoes",
    "/product/17",
    "/product/42",
    "/cart",
    "/checkout",
    "/checkout/confirm",
];
const COUNTRIES: &[&str] = &["DE", "FR", "US", "BR", "JP", "IN", "NG"];

/// Event time between consecutive clicks.
const SPACING_MS: i64 = 10;
/// Out-of-order arrival, within the job's watermark delay (2 s).
const JITTER_MS: i64 = 1_500;
/// The job's tumbling window, watermark delay and alert threshold (see clickstream.sql).
const WINDOW_MS: i64 = 10_000;
const WATERMARK_DELAY_MS: i64 = 2_000;
const THRESHOLD: usize = 15;
/// Scripted clients: each is active every other window, clicking about 25 times in it.
const BOTS: &[(&str, &str)] = &[
    ("u-4417", "198.51.100.7"),
    ("u-5093", "198.51.100.23"),
    ("u-6318", "192.0.2.77"),
];

/// Scripted credential stuffers: every 1,000 clicks one of them fails to log in
/// [`FAILED_LOGINS`] times in a row, then confirms a checkout (the job's pattern).
const STUFFERS: &[&str] = &["u-9001", "u-9002", "u-9003"];
const FAILED_LOGINS: usize = 4;
/// Where in each 1,000 clicks a stuffer's sequence starts.
const STUFFING_AT: usize = 500;

/// The stuffer and its step if click `n` belongs to a scripted failed-login sequence.
fn stuffing(n: usize) -> Option<(&'static str, usize)> {
    let step = (n % 1000).checked_sub(STUFFING_AT)?;
    (step <= FAILED_LOGINS).then(|| (STUFFERS[(n / 1000) % STUFFERS.len()], step))
}

/// One generated click.
struct Click {
    json: String,
    user_id: String,
    ts_ms: i64,
}

fn click(rng: &mut StdRng, n: usize, start_ms: i64) -> Click {
    let mut ts_ms = start_ms + n as i64 * SPACING_MS + rng.random_range(0..JITTER_MS);
    if let Some((user_id, step)) = stuffing(n) {
        // In order: a sequence is a pattern only in event time.
        ts_ms = start_ms + n as i64 * SPACING_MS;
        let url = if step < FAILED_LOGINS {
            "/login?failed"
        } else {
            "/checkout/confirm"
        };
        let json = serde_json::json!({
            "event_id": format!("e-{n:06}"),
            "user_id": user_id,
            "url": url,
            "ip": "192.0.2.200",
            "user_agent": USER_AGENTS[4],
            "country": "US",
            "dwell_ms": 300,
            "ts": sql_timestamp(ts_ms),
        })
        .to_string();
        return Click {
            json,
            user_id: user_id.to_string(),
            ts_ms,
        };
    }
    let window = (n as i64 * SPACING_MS) / WINDOW_MS;
    let active: Vec<&(&str, &str)> = BOTS
        .iter()
        .enumerate()
        .filter(|(i, _)| (window + *i as i64) % 2 == 0)
        .map(|(_, b)| b)
        .collect();
    let bot = (!active.is_empty() && rng.random_range(0..1000) < 25 * active.len())
        .then(|| active[rng.random_range(0..active.len())]);
    let (user_id, ip, agent) = match bot {
        Some((user, ip)) => (user.to_string(), ip.to_string(), USER_AGENTS[4]),
        None => (
            format!("u-{:04}", rng.random_range(0..2000)),
            format!("203.0.113.{}", rng.random_range(1..255)),
            USER_AGENTS[rng.random_range(0..4)],
        ),
    };
    let url = URLS[rng.random_range(0..URLS.len())];
    let json = serde_json::json!({
        "event_id": format!("e-{n:06}"),
        "user_id": user_id,
        "url": url,
        "ip": ip,
        "user_agent": agent,
        "country": COUNTRIES[rng.random_range(0..COUNTRIES.len())],
        "dwell_ms": rng.random_range(300..60_000),
        "ts": sql_timestamp(ts_ms),
    })
    .to_string();
    Click {
        json,
        user_id,
        ts_ms,
    }
}

/// The alerts the job writes for `clicks`: users with more than [`THRESHOLD`] clicks in a
/// window the watermark has passed once every click is read (later windows stay open).
fn expected_alerts(clicks: &[Click]) -> usize {
    let Some(max_ts) = clicks.iter().map(|c| c.ts_ms).max() else {
        return 0;
    };
    let watermark = max_ts - WATERMARK_DELAY_MS;
    let mut counts: std::collections::HashMap<(&str, i64), usize> = Default::default();
    for c in clicks {
        *counts
            .entry((c.user_id.as_str(), c.ts_ms.div_euclid(WINDOW_MS)))
            .or_default() += 1;
    }
    counts
        .iter()
        .filter(|((_, window), n)| **n > THRESHOLD && (window + 1) * WINDOW_MS - 1 <= watermark)
        .count()
}

/// The pattern alerts the job writes for `clicks`: the stuffers' sequences whose checkout
/// the watermark passes once every click is read.
fn expected_pattern_alerts(clicks: &[Click]) -> usize {
    let Some(max_ts) = clicks.iter().map(|c| c.ts_ms).max() else {
        return 0;
    };
    let watermark = max_ts - WATERMARK_DELAY_MS;
    clicks
        .iter()
        .enumerate()
        .filter(|(n, c)| {
            stuffing(*n).is_some_and(|(_, step)| step == FAILED_LOGINS) && c.ts_ms <= watermark
        })
        .count()
}

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC) for epoch milliseconds.
fn sql_timestamp(ms: i64) -> String {
    arrow::temporal_conversions::timestamp_ms_to_datetime(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

/// Runs the demo; returns the exit code.
pub async fn run(events: usize, format: OutputFormat) -> Result<i32> {
    let dir = std::env::temp_dir().join(format!("magnetar-demo-{}", std::process::id()));
    let broker = crate::broker::start_embedded(&dir).await?;
    let url = broker.service_url();
    let engine = Engine::new(EngineConfig::with_service_url(url.clone()));

    let view = crate::views::ViewOptions::from_settings(&engine.settings(), format);
    eprintln!("Running cli/examples/clickstream.sql:");
    for output in engine.execute(CLICKSTREAM_SQL).await.map_err(|e| {
        anyhow::anyhow!(
            "{}",
            crate::render::format_statement_error(&e, Some("clickstream.sql"))
        )
    })? {
        crate::render::print_output(output, &view).await?;
    }

    // Read the alerts back with a query of our own, printing them as they arrive.
    let mut alerts = engine
        .query("SELECT user_id, window_start, window_end, clicks, pages, ips FROM fraud_alerts")
        .await
        .context("reading fraud_alerts")?;

    let mut patterns = engine
        .query("SELECT user_id, first_failure, failures, confirmed_at FROM pattern_alerts")
        .await
        .context("reading pattern_alerts")?;

    let mut rng = StdRng::seed_from_u64(42);
    let start_ms = 1_764_000_000_000;
    let clicks: Vec<Click> = (0..events).map(|n| click(&mut rng, n, start_ms)).collect();
    let expected_windows = expected_alerts(&clicks);
    let expected_patterns = expected_pattern_alerts(&clicks);
    let expected = expected_windows + expected_patterns;
    eprintln!(
        "Generating {events} click events on click-events ({expected_windows} window alert(s) expected: users with more than {THRESHOLD} clicks in a 10-second window the watermark closes; {expected_patterns} pattern alert(s): {FAILED_LOGINS} failed logins, then a checkout)..."
    );
    let generator = tokio::spawn(async move {
        let mut sink = PulsarSink::connect(SinkConfig {
            service_url: url,
            topic: TopicName::parse("click-events")?,
            producer_name: Some("clickstream-generator".into()),
            routing: RoutingMode::RoundRobin,
            batch_size: 100,
            schema: None,
            security: Default::default(),
            compression: Default::default(),
        })
        .await?;
        for chunk in clicks.chunks(250) {
            for c in chunk {
                sink.send(OutgoingMessage {
                    payload: c.json.clone().into_bytes(),
                    key: Some(c.user_id.clone()),
                    ..Default::default()
                })
                .await?;
            }
            sink.flush().await?;
            // Spread the events out a little so the alerts visibly stream in.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sink.close().await?;
        anyhow::Ok(())
    });

    let mut seen = 0;
    let mut tableau = (format == OutputFormat::Table)
        .then(|| crate::views::Tableau::new(alerts.schema(), view.max_width));
    let deadline = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(deadline);
    while seen < expected_windows {
        tokio::select! {
            batch = alerts.next() => match batch {
                Some(batch) => {
                    let batch = batch?;
                    seen += batch.num_rows();
                    match tableau.as_mut() {
                        Some(t) => t.print_rows(&batch)?,
                        None => {
                            let first = seen == batch.num_rows();
                            print_batches(&[batch], format, first)?
                        }
                    }
                }
                None => break,
            },
            _ = &mut deadline => break,
            _ = crate::script::shutdown_signal() => break,
        }
    }
    if let Some(t) = tableau {
        t.finish()?;
    }
    // The pattern alerts, once the window alerts are in (they are fewer).
    let mut seen_patterns = 0;
    let mut found = Vec::new();
    while seen_patterns < expected_patterns {
        tokio::select! {
            batch = patterns.next() => match batch {
                Some(batch) => {
                    let batch = batch?;
                    seen_patterns += batch.num_rows();
                    found.push(batch);
                }
                None => break,
            },
            _ = &mut deadline => break,
            _ = crate::script::shutdown_signal() => break,
        }
    }
    if !found.is_empty() {
        eprintln!("Pattern alerts (MATCH_RECOGNIZE):");
        print_batches(&found, format, true)?;
    }
    patterns.close().await;
    eprintln!("Pattern alerts: {seen_patterns} of {expected_patterns} expected.");
    seen += seen_patterns;
    generator.await??;
    alerts.close().await;
    let info = engine.stop_job("fraud-detector").await?;
    eprintln!(
        "Job '{}' {}: read {} click(s), wrote {} alert(s); the demo saw {seen} of {expected} expected alerts.",
        info.name.as_deref().unwrap_or(&info.id),
        info.state.name().to_ascii_lowercase(),
        info.messages_read,
        info.messages_written,
    );
    if let Ok(StatementOutput::Table(jobs)) =
        engine.execute("SHOW JOBS").await.map(|mut v| v.remove(0))
    {
        print_batches(&jobs, OutputFormat::Table, true)?;
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    if seen != expected || info.messages_written != expected as u64 {
        bail!(
            "expected {expected} alerts, saw {seen}; the job wrote {}",
            info.messages_written
        );
    }
    eprintln!("Demo complete; broker stopped.");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        assert_eq!(sql_timestamp(0), "1970-01-01 00:00:00.000");
        assert_eq!(sql_timestamp(1_764_000_000_123), "2025-11-24 16:00:00.123");
    }

    #[test]
    fn stuffers_fail_four_times_then_check_out() {
        let steps: Vec<Option<(&str, usize)>> = (499..506).map(stuffing).collect();
        assert_eq!(steps[0], None);
        assert_eq!(steps[1], Some(("u-9001", 0)));
        assert_eq!(steps[5], Some(("u-9001", 4)));
        assert_eq!(steps[6], None);
        assert_eq!(stuffing(1500), Some(("u-9002", 0)));
    }
}
