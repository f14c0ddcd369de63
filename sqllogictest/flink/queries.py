"""The window queries compared with Apache Flink: the same DDL and SQL run on both."""

# `{path}` is replaced by the data file's path (relative for Magnetar's runner, absolute
# for Flink).
DDL = """CREATE TABLE clicks (
  user_id STRING,
  url STRING,
  amount INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{path}',
  'format' = 'json',
  'scan.watermark.emit.strategy' = 'on-event'
)"""

DATA = "test_files/data/clicks.json"

QUERIES = [
    ("tumble per user with several aggregates", """
SELECT window_start, window_end, user_id, count(*) AS clicks, sum(amount) AS total,
       min(amount) AS lo, max(amount) AS hi, count(DISTINCT url) AS pages,
       AVG(CAST(amount AS DOUBLE)) AS mean
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, user_id"""),
    ("tumble with HAVING and a projection", """
SELECT window_start, user_id, count(*) AS c
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, user_id
HAVING count(*) >= 2"""),
    ("tumble with an offset, no key", """
SELECT window_start, window_end, count(*) AS c, sum(amount) AS total
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '1' SECOND))
GROUP BY window_start, window_end"""),
    ("tumble grouped by window_time too", """
SELECT window_start, window_end, window_time, count(*) AS c
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, window_time"""),
    ("hop per user", """
SELECT window_start, window_end, user_id, count(*) AS c, sum(amount) AS total
FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '6' SECOND))
GROUP BY window_start, window_end, user_id"""),
    ("hop without a key", """
SELECT window_start, window_end, count(*) AS c
FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
GROUP BY window_start, window_end"""),
    ("cumulate per user", """
SELECT window_start, window_end, user_id, count(*) AS c, sum(amount) AS total
FROM TABLE(CUMULATE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '6' SECOND))
GROUP BY window_start, window_end, user_id"""),
    ("session per user", """
SELECT window_start, window_end, user_id, count(*) AS c, sum(amount) AS total
FROM TABLE(SESSION(TABLE clicks PARTITION BY user_id, DESCRIPTOR(ts), INTERVAL '2' SECOND))
GROUP BY window_start, window_end, user_id"""),
    ("top 2 users per window", """
SELECT window_start, window_end, user_id, total, rownum FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY total DESC, user_id) AS rownum
  FROM (
    SELECT window_start, window_end, user_id, sum(amount) AS total
    FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND))
    GROUP BY window_start, window_end, user_id))
WHERE rownum <= 2"""),
    ("the tumble TVF on its own", """
SELECT user_id, amount, window_start, window_end
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND))"""),
    ("the hop TVF on its own: a row per window", """
SELECT user_id, amount, window_start, window_end
FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
WHERE user_id = 'u1'"""),
]
