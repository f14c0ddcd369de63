"""The interval join queries compared with Apache Flink: the same DDL, data and SQL run on
both (see generate.py). The data is join_events.py's."""

TITLE = "Interval join results"
OUTPUT = "flink_interval_join.slt"

DDL = [
    """CREATE TABLE clicks (
  user_id STRING,
  url STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{clicks}',
  'format' = 'json',
  'scan.watermark.emit.strategy' = 'on-event'
)""",
    """CREATE TABLE orders (
  order_id BIGINT,
  user_id STRING,
  amount INT,
  ots TIMESTAMP(3),
  WATERMARK FOR ots AS ots - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{orders}',
  'format' = 'json',
  'scan.watermark.emit.strategy' = 'on-event'
)""",
    # Orders within five minutes after a click, as a view whose click time stays event time.
    """CREATE TEMPORARY VIEW clicked_orders AS
SELECT c.user_id, c.url, c.ts, o.order_id, o.amount, o.ots
FROM clicks c JOIN orders o
  ON c.user_id = o.user_id AND o.ots BETWEEN c.ts AND c.ts + INTERVAL '5' MINUTE""",
]

DATA = {"clicks": "test_files/data/join_clicks.json", "orders": "test_files/data/join_orders.json"}

QUERIES = [
    ("inner: orders from five minutes before a click to one minute after (both edges included)", """
SELECT c.user_id, c.url, c.ts, o.order_id, o.amount, o.ots
FROM clicks c JOIN orders o
  ON c.user_id = o.user_id
 AND o.ots BETWEEN c.ts - INTERVAL '5' MINUTE AND c.ts + INTERVAL '1' MINUTE
"""),
    ("inner, strict bounds written apart, in WHERE, with a condition on the pair", """
SELECT c.user_id, c.ts, o.order_id, o.ots
FROM clicks c, orders o
WHERE c.user_id = o.user_id
  AND o.ots > c.ts AND o.ots < c.ts + INTERVAL '1' MINUTE
  AND o.amount > 100 AND c.url <> '/home'
"""),
    ("left outer: every click, with the orders of the minute after it, or NULLs", """
SELECT c.user_id, c.url, c.ts, o.order_id, o.ots
FROM clicks c LEFT JOIN orders o
  ON c.user_id = o.user_id AND o.ots BETWEEN c.ts AND c.ts + INTERVAL '1' MINUTE
"""),
    ("right outer: every order, with the clicks of the five minutes before it, or NULLs", """
SELECT c.url, c.ts, o.order_id, o.user_id, o.ots
FROM clicks c RIGHT JOIN orders o
  ON c.user_id = o.user_id AND c.ts BETWEEN o.ots - INTERVAL '5' MINUTE AND o.ots
"""),
    ("full outer with a condition on the pair: unmatched rows of both sides padded", """
SELECT c.user_id, c.ts, o.user_id, o.order_id, o.amount, o.ots
FROM clicks c FULL JOIN orders o
  ON c.user_id = o.user_id
 AND o.ots BETWEEN c.ts - INTERVAL '30' SECOND AND c.ts + INTERVAL '30' SECOND
 AND o.amount >= 200
"""),
    ("orders without a click in the five minutes before them", """
SELECT o.order_id, o.user_id, o.ots
FROM orders o LEFT JOIN clicks c
  ON o.user_id = c.user_id AND c.ts BETWEEN o.ots - INTERVAL '5' MINUTE AND o.ots
WHERE c.user_id IS NULL
"""),
    ("a tumbling window over an interval join's output, on the click time", """
SELECT window_start, window_end, COUNT(*) AS pairs, SUM(amount) AS total
FROM TABLE(TUMBLE(TABLE clicked_orders, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end
"""),
    ("three inputs: a click, an order within a minute after it, and a click within a minute after that", """
SELECT c.user_id, c.ts, o.order_id, o.ots, c2.url, c2.ts AS next_ts
FROM clicks c
JOIN orders o
  ON c.user_id = o.user_id AND o.ots BETWEEN c.ts AND c.ts + INTERVAL '1' MINUTE
JOIN clicks c2
  ON o.user_id = c2.user_id AND c2.ts > o.ots AND c2.ts <= o.ots + INTERVAL '1' MINUTE
"""),
]
