"""The MATCH_RECOGNIZE queries compared with Apache Flink: the same DDL, data and SQL run
on both (see generate.py). The data is login_events.py's."""

TITLE = "MATCH_RECOGNIZE results"
OUTPUT = "flink_match_recognize.slt"

DDL = ["""CREATE TABLE events (
  user_id STRING,
  action STRING,
  amount INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{path}',
  'format' = 'json',
  'scan.watermark.emit.strategy' = 'on-event'
)""",
    # A pattern's matches as a view: MATCH_ROWTIME() is their event time, so a window can
    # follow.
    """CREATE TEMPORARY VIEW fail_then_buy AS
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES COUNT(F.action) AS fails, B.amount AS amount, MATCH_ROWTIME() AS match_time
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (F{{2,}} B) WITHIN INTERVAL '10' MINUTE
  DEFINE
    F AS F.action = 'login_failed',
    B AS B.action = 'purchase'
)""",
    # A view that filters and renames: its time column stays the table's event time.
    """CREATE TEMPORARY VIEW logins_only (who, what, ts) AS
SELECT user_id, action, ts FROM events WHERE action LIKE 'login%'""",
]

DATA = "test_files/data/logins.json"

QUERIES = [
    ("fraud: failed logins, then a large purchase, greedy, within ten minutes", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES
    FIRST(F.ts) AS first_fail, LAST(F.ts) AS last_fail, COUNT(F.action) AS fails,
    B.amount AS amount, MATCH_ROWTIME() AS match_time
  ONE ROW PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (F{3,} B) WITHIN INTERVAL '10' MINUTE
  DEFINE
    F AS F.action = 'login_failed',
    B AS B.action = 'purchase' AND B.amount > 500 AND B.amount > 2 * AVG(F.amount)
)
"""),
    ("fraud with an optional good login after reluctant failures", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES
    FIRST(F.ts) AS first_fail, COUNT(F.action) AS fails, COUNT(S.action) AS oks,
    B.amount AS amount, AVG(F.amount) AS avg_fail, MATCH_ROWTIME() AS match_time
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (F{2,}? S? B) WITHIN INTERVAL '1' MINUTE
  DEFINE
    F AS F.action = 'login_failed',
    S AS S.action = 'login_ok',
    B AS B.action = 'purchase' AND B.amount > 400
)
"""),
    ("rising amounts then a drop (greedy, default skip: to next row)", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES
    FIRST(UP.amount) AS low, LAST(UP.amount) AS high, D.amount AS dropped_to,
    COUNT(UP.amount) AS ups, FIRST(UP.ts) AS start_ts, D.ts AS end_ts
  PATTERN (UP{2,} D)
  DEFINE
    UP AS UP.amount > LAST(UP.amount, 1) OR LAST(UP.amount, 1) IS NULL,
    D AS D.amount < LAST(UP.amount)
)
"""),
    ("overlapping matches with skip to next row", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES A.ts AS a_ts, LAST(B.ts) AS b_ts, SUM(B.amount) AS b_total
  AFTER MATCH SKIP TO NEXT ROW
  PATTERN (A B{2})
  DEFINE
    A AS A.action = 'click',
    B AS B.action <> 'purchase'
)
"""),
    ("the same past the last row", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES A.ts AS a_ts, LAST(B.ts) AS b_ts, SUM(B.amount) AS b_total
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B{2})
  DEFINE
    A AS A.action = 'click',
    B AS B.action <> 'purchase'
)
"""),
    ("a bounded reluctant repetition at the end", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES A.ts AS a_ts, COUNT(B.amount) AS bs, MAX(B.amount) AS top
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B{1,3}?)
  DEFINE
    A AS A.action = 'login_ok',
    B AS B.action = 'click'
)
"""),
    ("a greedy bounded repetition before a single variable", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES FIRST(C.ts) AS c_ts, COUNT(C.amount) AS cs, P.amount AS bought
  AFTER MATCH SKIP TO NEXT ROW
  PATTERN (C{2,3} P)
  DEFINE
    C AS C.action = 'click',
    P AS P.action = 'purchase'
)
"""),
    ("a reluctant star between two variables", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES L.ts AS login_ts, COUNT(X.amount) AS between_rows, P.amount AS bought
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (L X*? P)
  DEFINE
    L AS L.action = 'login_ok',
    P AS P.action = 'purchase'
)
"""),
    ("skip to the last row of a variable", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES FIRST(A.ts) AS a_ts, LAST(B.ts) AS b_ts, C.amount AS c_amount
  AFTER MATCH SKIP TO LAST B
  PATTERN (A B+? C)
  DEFINE
    A AS A.action = 'click',
    B AS B.amount > 20,
    C AS C.action = 'purchase'
)
"""),
    ("skip to the first row of a later variable", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES A.ts AS a_ts, FIRST(B.ts) AS b_ts, COUNT(B.amount) AS bs
  AFTER MATCH SKIP TO FIRST B
  PATTERN (A B+? C)
  DEFINE
    A AS A.action = 'login_failed',
    B AS B.action = 'login_failed',
    C AS C.action <> 'login_failed'
)
"""),
    ("PREV and an unqualified LAST in DEFINE (null on a match's first row)", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES FIRST(A.ts) AS a_ts, LAST(A.amount) AS a_amount, B.amount AS b_amount
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A{2} B)
  DEFINE
    A AS PREV(amount) IS NULL OR A.amount >= PREV(amount),
    B AS B.amount < LAST(amount, 1) / 2
)
"""),
    ("WITHIN expiry of a slow pattern", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES L.ts AS login_ts, P.ts AS purchase_ts
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (L X*? P) WITHIN INTERVAL '5' SECOND
  DEFINE
    L AS L.action = 'login_ok',
    P AS P.action = 'purchase'
)
"""),
    ("equal times ordered by a further column, no partition", """
SELECT * FROM events
MATCH_RECOGNIZE (
  ORDER BY ts, amount DESC
  MEASURES A.user_id AS a_user, A.amount AS a_amount, B.user_id AS b_user, B.amount AS b_amount, B.ts AS b_ts
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B)
  DEFINE
    A AS A.action = 'login_failed',
    B AS B.action = 'login_failed' AND B.ts = A.ts
)
"""),
    ("aggregates, FIRST and LAST with offsets, a variable without DEFINE", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES
    COUNT(*) AS n, SUM(F.amount) AS total, MIN(F.amount) AS lo, MAX(F.amount) AS hi,
    AVG(F.amount) AS mean, FIRST(F.amount, 1) AS second_fail, LAST(F.amount, 1) AS before_last,
    X.action AS next_action, MATCH_ROWTIME() AS t
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (F{2,}? X)
  DEFINE
    F AS F.action = 'login_failed'
)
"""),
    ("an aggregate over all rows so far in DEFINE", """
SELECT * FROM events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY ts
  MEASURES FIRST(A.ts) AS a_ts, COUNT(A.amount) AS an, SUM(A.amount) AS total, B.amount AS b_amount
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A+ B)
  DEFINE
    A AS A.action = 'click' AND SUM(A.amount) < 400,
    B AS B.action = 'purchase'
)
"""),
    ("a pattern's matches counted in 30-second tumbling windows of their match time", """
SELECT window_start, window_end, COUNT(*) AS match_count, SUM(fails) AS fails, MAX(amount) AS top
FROM TABLE(TUMBLE(TABLE fail_then_buy, DESCRIPTOR(match_time), INTERVAL '30' SECOND))
GROUP BY window_start, window_end
"""),
    ("a pattern's matches per user in hopping windows", """
SELECT user_id, window_start, window_end, COUNT(*) AS match_count
FROM TABLE(HOP(TABLE fail_then_buy, DESCRIPTOR(match_time), INTERVAL '30' SECOND, INTERVAL '1' MINUTE))
GROUP BY user_id, window_start, window_end
"""),
    ("a pattern over a view that filters and renames", """
SELECT * FROM logins_only
MATCH_RECOGNIZE (
  PARTITION BY who
  ORDER BY ts
  MEASURES FIRST(F.ts) AS first_fail, COUNT(F.what) AS fails, OK.ts AS ok_ts
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (F{2,} OK)
  DEFINE
    F AS F.what = 'login_failed',
    OK AS OK.what = 'login_ok'
)
"""),
]
