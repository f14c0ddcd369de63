//! A SQL fuzz test: a few thousand generated statements (odd nesting, extreme literals and
//! intervals, wrong types, unknown names, truncated statements, random settings and DDL) run
//! through one `Engine` in one process. None may panic, abort or hang; each error is located
//! in the script and says something.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use magnetar::{Engine, EngineConfig, StatementOutput};

/// Statements generated per run (fixed seeds: every run tries the same ones).
const CASES: usize = 3000;
/// Longest a statement (and reading its rows) may take before it counts as a hang.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Rows read of a result before it is dropped (a huge result is not a failure).
const MOST_ROWS: usize = 20_000;

/// Panics anywhere in the process (also in tasks whose panic becomes an error).
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const LITERALS: &[&str] = &[
    "0",
    "-1",
    "1",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "99999999999999999999999999999999999999",
    "1e308",
    "-1e308",
    "1e-320",
    "0.1",
    "123456789012345678901234567890.123456789",
    "'abc'",
    "''",
    "'🦀 ünïcödé'",
    "'1.5'",
    "NULL",
    "TRUE",
    "TIMESTAMP '9999-12-31 23:59:59.999'",
    "TIMESTAMP '0001-01-01 00:00:00'",
    "TIMESTAMP '2024-02-30 00:00:00'",
    "DATE '2024-02-29'",
    "INTERVAL '999999999' DAY",
    "INTERVAL '-1' SECOND",
    "INTERVAL '0' SECOND",
    "INTERVAL '1' MONTH",
    "CAST(9223372036854775807 AS TIMESTAMP(3))",
    "ARRAY[1, 2, 3]",
    "X'DEADBEEF'",
];

const COLUMNS: &[&str] = &[
    "user_id", "amount", "n", "ts", "nope", "clicks.n", "\"N\"", "`ts`",
];

const BINARY: &[&str] = &[
    "+",
    "-",
    "*",
    "/",
    "%",
    "||",
    "=",
    "<>",
    "<",
    ">=",
    "AND",
    "OR",
    "LIKE",
    "IS DISTINCT FROM",
];

const FUNCTIONS: &[&str] = &[
    "abs",
    "length",
    "upper",
    "sqrt",
    "ln",
    "exp",
    "floor",
    "round",
    "to_timestamp",
    "date_trunc('day', {})",
    "substr({}, 9223372036854775807, 2)",
    "power({}, 1e10)",
    "repeat('ab', {})",
    "coalesce",
    "nullif({}, 0)",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "nope_function",
    "CAST({} AS BIGINT)",
    "CAST({} AS DECIMAL(38, 10))",
    "CAST({} AS TINYINT)",
    "CAST({} AS TIMESTAMP(3))",
    "CAST({} AS DATE)",
    "CAST({} AS STRING)",
    "TRY_CAST({} AS INT)",
    "EXTRACT(YEAR FROM {})",
    "{} IS NULL",
    "NOT {}",
    "-{}",
    "CASE WHEN {} THEN 1 ELSE 'x' END",
    "{} BETWEEN 1 AND 9223372036854775807",
    "{} IN (1, 2, NULL)",
];

const TYPES: &[&str] = &[
    "BIGINT",
    "INT",
    "TINYINT",
    "DOUBLE",
    "STRING",
    "DECIMAL(38, 10)",
    "DECIMAL(5, 2)",
    "TIMESTAMP(3)",
    "TIMESTAMP(9)",
    "DATE",
    "BOOLEAN",
    "ARRAY<INT>",
    "BYTES",
    "MAP<STRING, INT>",
    "ROW<a INT, b STRING>",
    "VARCHAR(0)",
    "DECIMAL(99, 2)",
    "NOPE",
];

const DURATIONS: &[&str] = &[
    "'1' SECOND",
    "'0' SECOND",
    "'-1' MINUTE",
    "'1' MONTH",
    "'99999999999' DAY",
    "'0.001' SECOND",
    "'10' SECOND",
    "'1' MINUTE",
    "'1.5' SECOND",
];

fn expr(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth > 4 { 2 } else { 6 }) {
        0 => rng.pick(LITERALS).to_string(),
        1 => rng.pick(COLUMNS).to_string(),
        2 => format!(
            "{} {} {}",
            expr(rng, depth + 1),
            rng.pick(BINARY),
            expr(rng, depth + 1)
        ),
        3 => {
            let f = rng.pick(FUNCTIONS);
            let arg = expr(rng, depth + 1);
            if f.contains("{}") {
                f.replace("{}", &arg)
            } else {
                format!("{f}({arg})")
            }
        }
        4 => {
            // A long flat chain: an operator run near and past the statement-shape limit.
            let n = [10, 200, 256, 257, 5000][rng.below(5)];
            vec!["n"; n].join(rng.pick(&[" + ", " AND ", " || "]))
        }
        _ => {
            // Deep parentheses, past sqlparser's recursion limit at times.
            let k = rng.below(80);
            format!("{}{}{}", "(".repeat(k), expr(rng, depth + 1), ")".repeat(k))
        }
    }
}

fn window(rng: &mut Rng) -> String {
    let d = |rng: &mut Rng| format!("INTERVAL {}", rng.pick(DURATIONS));
    match rng.below(4) {
        0 => format!("TUMBLE(TABLE clicks, DESCRIPTOR(ts), {})", d(rng)),
        1 => format!("HOP(TABLE clicks, DESCRIPTOR(ts), {}, {})", d(rng), d(rng)),
        2 => format!(
            "CUMULATE(TABLE clicks, DESCRIPTOR(ts), {}, {})",
            d(rng),
            d(rng)
        ),
        _ => format!(
            "SESSION(TABLE clicks PARTITION BY user_id, DESCRIPTOR({}), {})",
            rng.pick(&["ts", "n", "nope"]),
            d(rng)
        ),
    }
}

fn statement(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=3 => {
            let mut s = format!("SELECT {}", expr(rng, 0));
            if rng.chance(40) {
                s.push_str(&format!(", {}", expr(rng, 0)));
            }
            s.push_str(rng.pick(&[" FROM clicks", " FROM clicks c", " FROM nope", ""]));
            if rng.chance(40) {
                s.push_str(&format!(" WHERE {}", expr(rng, 1)));
            }
            if rng.chance(25) {
                s.push_str(&format!(" GROUP BY {}", expr(rng, 2)));
            }
            if rng.chance(25) {
                s.push_str(&format!(" ORDER BY {}", expr(rng, 2)));
            }
            if rng.chance(20) {
                s.push_str(rng.pick(&[
                    " LIMIT 0",
                    " LIMIT 9223372036854775807",
                    " LIMIT -1",
                    " LIMIT 3 OFFSET 18446744073709551615",
                ]));
            }
            s
        }
        4 | 5 => format!(
            "SELECT window_start, window_end, {} FROM TABLE({}) GROUP BY window_start, window_end",
            rng.pick(&[
                "count(*)",
                "sum(amount)",
                "max(ts)",
                "count(DISTINCT user_id)"
            ]),
            window(rng)
        ),
        6 => {
            let name = rng.pick(&["t1", "t2", "clicks", "\"Odd Name\"", "`x`.`y`"]);
            let cols: Vec<String> = (0..1 + rng.below(4))
                .map(|i| format!("c{i} {}", rng.pick(TYPES)))
                .collect();
            let extra = rng.pick(&[
                "",
                ", WATERMARK FOR c0 AS c0 - INTERVAL '5' SECOND",
                ", WATERMARK FOR c0 AS 'x'",
                ", PRIMARY KEY (c0) NOT ENFORCED",
                ", PRIMARY KEY (nope) NOT ENFORCED",
            ]);
            let options = rng.pick(&[
                "'connector' = 'memory'",
                "'connector' = 'memory', 'scan.bounded' = 'true'",
                "'connector' = 'memory', 'partitions' = '99999999999'",
                "'connector' = 'nope'",
                "'connector' = 'pulsar', 'topics' = 't', 'source.idle-timeout' = '99999999999999999 h'",
                "'connector' = 'pulsar', 'topics' = '[', 'format' = 'json'",
                "'connector' = 'filesystem', 'path' = '/nonexistent/dir', 'format' = 'csv'",
                "",
            ]);
            format!(
                "CREATE TABLE {name} ({}{extra}) WITH ({options})",
                cols.join(", ")
            )
        }
        7 => format!(
            "SET '{}' = '{}'",
            rng.pick(&[
                "execution.flush-interval",
                "execution.batch-size",
                "parallelism.default",
                "pipeline.max-parallelism",
                "execution.memory-limit",
                "execution.checkpointing.interval",
                "nope.setting",
            ]),
            rng.pick(&[
                "99999999999999999 h",
                "0",
                "-1",
                "18446744073709551616",
                "1 ms",
                "4",
                "abc",
                "1 mb",
                "",
            ])
        ),
        8 => rng
            .pick(&[
                "SHOW TABLES",
                "SHOW JOBS",
                "SHOW SET",
                "DESCRIBE clicks",
                "SHOW CREATE TABLE clicks",
                "SHOW CREATE TABLE nope",
                "DROP TABLE IF EXISTS t1",
                "DROP TABLE t2",
                "RESET",
                "STOP JOB 'nope'",
                "EXPLAIN SELECT count(*) FROM live",
                "EXPLAIN SELECT * FROM live WHERE n > 1",
                "INSERT INTO nope SELECT 1",
            ])
            .to_string(),
        _ => {
            // Garbage: random tokens.
            let tokens = [
                "SELECT",
                "(",
                ")",
                ",",
                "FROM",
                "TABLE",
                "WITH",
                "'",
                "\"",
                "--",
                "/*",
                "*/",
                "1",
                "=",
                ";",
                "WINDOW",
                "OVER",
                "PARTITION",
                "MATCH_RECOGNIZE",
                "JOIN",
                "ON",
                "ARRAY<",
                ">",
                "INTERVAL",
                "\\",
                "\u{0}",
                "é",
            ];
            (0..1 + rng.below(30))
                .map(|_| rng.pick(&tokens))
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}

/// Runs `sql` to its end: every output, every row (up to a cap). Returns the error text, if any.
async fn run(engine: &Engine, sql: &str) -> Option<String> {
    let outputs = match engine.execute(sql).await {
        Ok(outputs) => outputs,
        Err(e) => {
            let text = e.to_string();
            let at = e.location();
            assert!(at.line >= 1 && at.column >= 1, "{sql}: no place for {text}");
            assert!(!text.trim().is_empty(), "{sql}: an empty error");
            return Some(text);
        }
    };
    for output in outputs {
        if let StatementOutput::Query(mut rows) = output {
            let mut seen = 0;
            while let Some(batch) = rows.next().await {
                match batch {
                    Ok(b) => seen += b.num_rows(),
                    Err(e) => {
                        let text = e.to_string();
                        assert!(!text.trim().is_empty(), "{sql}: an empty error");
                        return Some(text);
                    }
                }
                if seen > MOST_ROWS {
                    break;
                }
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_statements_fail_cleanly_or_run() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        default_hook(info);
    }));
    let engine = Engine::new(EngineConfig::default());
    engine
        .execute(
            "CREATE TABLE clicks (user_id STRING, amount DOUBLE, n BIGINT, ts TIMESTAMP(3),
               WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
             WITH ('connector' = 'memory', 'scan.bounded' = 'true');
             CREATE TABLE live (n BIGINT) WITH ('connector' = 'memory');
             SET 'table.dml-sync' = 'true';
             INSERT INTO clicks VALUES
               ('a', 1.5, 1, TIMESTAMP '2024-01-01 00:00:01'),
               ('b', -2.0, 9223372036854775807, TIMESTAMP '2024-01-01 00:00:59'),
               (NULL, NULL, NULL, NULL),
               ('a', 1e308, -9223372036854775808, TIMESTAMP '2024-01-01 00:10:00')",
        )
        .await
        .expect("setup");
    let mut rng = Rng(0x6d61_676e_6574_6172);
    let (mut failed, mut ran) = (0usize, 0usize);
    for case in 0..CASES {
        let mut sql = statement(&mut rng);
        if rng.chance(15) {
            // Truncated anywhere (on a character boundary).
            let cut = rng.below(sql.chars().count() + 1);
            sql = sql.chars().take(cut).collect();
        }
        if std::env::var_os("MAGNETAR_SQL_FUZZ_TRACE").is_some() {
            let chars: Vec<char> = sql.chars().collect();
            let tail: String = chars[chars.len().saturating_sub(200)..].iter().collect();
            eprintln!(
                "case {case} ({} chars): {} ... {tail}",
                chars.len(),
                chars.iter().take(200).collect::<String>()
            );
        }
        let outcome = tokio::time::timeout(
            STEP_TIMEOUT,
            AssertUnwindSafe(run(&engine, &sql)).catch_unwind(),
        )
        .await;
        match outcome {
            Err(_) => panic!("case {case} hung for {STEP_TIMEOUT:?}: {sql}"),
            Ok(Err(panic)) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("case {case} panicked ({what}): {sql}");
            }
            Ok(Ok(Some(_))) => failed += 1,
            Ok(Ok(None)) => ran += 1,
        }
        assert_eq!(
            PANICS.load(Ordering::Relaxed),
            0,
            "case {case} panicked inside the engine (see the message above): {sql}"
        );
        // Settings the generator changed stay sane for the next cases.
        if sql.starts_with("SET") {
            let _ = engine.execute("RESET").await;
            let _ = engine.execute("SET 'table.dml-sync' = 'true'").await;
        }
    }
    // The generator reaches both outcomes often: it is not only producing garbage.
    assert!(ran > CASES / 10, "{ran} of {CASES} ran");
    assert!(failed > CASES / 10, "{failed} of {CASES} failed");
    // The engine still works.
    let outputs = engine.execute("SELECT count(*) FROM clicks").await;
    assert!(outputs.is_ok());
}
