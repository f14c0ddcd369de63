"""The UNION ALL queries compared with Apache Flink: the same DDL and SQL run on both."""

TITLE = "UNION ALL results"
OUTPUT = "flink_union.slt"

# Two tables, each declared like queries.py's clicks. `{clicks}` and `{app_clicks}` are
# replaced by the data files' paths (relative for Magnetar's runner, absolute for Flink).
_TABLE = """CREATE TABLE {name} (
  user_id STRING,
  url STRING,
  amount INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{{name}}}',
  'format' = 'json',
  'scan.watermark.emit.strategy' = 'on-event'
)"""

DDL = [_TABLE.format(name="clicks"), _TABLE.format(name="app_clicks")]

DATA = {
    "clicks": "test_files/data/clicks.json",
    "app_clicks": "test_files/data/app_clicks.json",
}

QUERIES = [
    ("union of two filtered projections with a literal source column", """
SELECT 'web' AS src, user_id, amount FROM clicks WHERE amount >= 20
UNION ALL
SELECT 'app' AS src, user_id, amount FROM app_clicks WHERE amount >= 20"""),
    ("computed columns, names taken from the first input", """
SELECT who, page, v, v - amount AS diff FROM (
  SELECT user_id AS who, url AS page, amount * 2 AS v, amount FROM clicks
  UNION ALL
  SELECT user_id AS uid, url AS path, amount + 1 AS bumped, amount AS a FROM app_clicks)"""),
    ("three inputs, the same table twice: overlapping rows are kept twice", """
SELECT user_id, url, amount FROM clicks WHERE url = '/buy'
UNION ALL
SELECT user_id, url, amount FROM app_clicks WHERE user_id IN ('u1', 'u7')
UNION ALL
SELECT user_id, url, amount FROM clicks WHERE amount >= 40"""),
    ("two tumble aggregates, one per table", """
SELECT 'web' AS src, window_start, window_end, user_id, count(*) AS cnt, sum(amount) AS total
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, user_id
UNION ALL
SELECT 'app' AS src, window_start, window_end, user_id, count(*) AS cnt, sum(amount) AS total
FROM TABLE(TUMBLE(TABLE app_clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, user_id"""),
    ("a hop aggregate and a tumble aggregate", """
SELECT window_start, window_end, count(*) AS cnt
FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
GROUP BY window_start, window_end
UNION ALL
SELECT window_start, window_end, count(*) AS cnt
FROM TABLE(TUMBLE(TABLE app_clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end"""),
    ("window top 2 over the union of two tumble aggregates", """
SELECT window_start, window_end, src, user_id, cnt, rownum FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY cnt DESC, src, user_id) AS rownum
  FROM (
    SELECT 'web' AS src, window_start, window_end, user_id, count(*) AS cnt
    FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND))
    GROUP BY window_start, window_end, user_id
    UNION ALL
    SELECT 'app' AS src, window_start, window_end, user_id, count(*) AS cnt
    FROM TABLE(TUMBLE(TABLE app_clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND))
    GROUP BY window_start, window_end, user_id))
WHERE rownum <= 2"""),
]
