"""The window join queries compared with Apache Flink: the same DDL, data and SQL run on
both (see generate.py). The data is join_events.py's, as for the interval joins."""

from join_queries import DATA, DDL as JOIN_DDL

TITLE = "Window join results"
OUTPUT = "flink_window_join.slt"

# The two tables (the interval join module's view is not needed here).
DDL = JOIN_DDL[:2]

L = "(SELECT * FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE)))"
R = "(SELECT * FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ots), INTERVAL '1' MINUTE)))"
SAME_WINDOW = "l.window_start = r.window_start AND l.window_end = r.window_end"

QUERIES = [
    ("inner: clicks and orders of a user in the same minute", f"""
SELECT l.user_id, l.url, l.ts, r.order_id, r.ots, l.window_start, l.window_end
FROM {L} l JOIN {R} r
  ON l.user_id = r.user_id AND {SAME_WINDOW}
"""),
    ("inner with a condition on the pair, over hopping windows", """
SELECT l.user_id, l.ts, r.order_id, l.window_start, l.window_end
FROM (SELECT * FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '30' SECOND, INTERVAL '1' MINUTE))) l
JOIN (SELECT * FROM TABLE(HOP(TABLE orders, DESCRIPTOR(ots), INTERVAL '30' SECOND, INTERVAL '1' MINUTE))) r
  ON l.user_id = r.user_id AND l.window_start = r.window_start AND l.window_end = r.window_end
 AND r.ots >= l.ts AND r.amount > 150
"""),
    ("left outer: every click, with the orders of its minute or NULLs", f"""
SELECT l.user_id, l.ts, r.order_id, r.amount, l.window_start, l.window_end
FROM {L} l LEFT JOIN {R} r
  ON l.user_id = r.user_id AND {SAME_WINDOW}
"""),
    ("right outer: every order, with the clicks of its minute or NULLs", f"""
SELECT l.url, l.ts, r.user_id, r.order_id, r.window_start, r.window_end
FROM {L} l RIGHT JOIN {R} r
  ON l.user_id = r.user_id AND {SAME_WINDOW}
"""),
    ("full outer, the window from whichever side has it", f"""
SELECT COALESCE(l.user_id, r.user_id) AS user_id, l.ts, r.order_id,
       COALESCE(l.window_start, r.window_start) AS window_start,
       COALESCE(l.window_end, r.window_end) AS window_end
FROM {L} l FULL JOIN {R} r
  ON l.user_id = r.user_id AND {SAME_WINDOW}
"""),
    ("semi (IN): clicks of users who ordered in the same minute", f"""
SELECT l.user_id, l.url, l.ts, l.window_start
FROM {L} l
WHERE l.user_id IN (
  SELECT r.user_id FROM {R} r WHERE {SAME_WINDOW})
"""),
    ("semi (EXISTS) with a condition", f"""
SELECT l.user_id, l.ts, l.window_end
FROM {L} l
WHERE EXISTS (
  SELECT * FROM {R} r WHERE l.user_id = r.user_id AND {SAME_WINDOW} AND r.amount >= 200)
"""),
    ("anti (NOT EXISTS): clicks of users who did not order in the same minute", f"""
SELECT l.user_id, l.url, l.ts, l.window_start
FROM {L} l
WHERE NOT EXISTS (
  SELECT * FROM {R} r WHERE l.user_id = r.user_id AND {SAME_WINDOW})
"""),
    ("anti (NOT IN)", f"""
SELECT l.user_id, l.ts, l.window_start
FROM {L} l
WHERE l.user_id NOT IN (
  SELECT r.user_id FROM {R} r WHERE {SAME_WINDOW})
"""),
    ("a window aggregate joined with another: clicks and order totals per user and minute", """
SELECT c.user_id, c.window_start, c.window_end, c.clicks, o.orders, o.total
FROM (
  SELECT user_id, window_start, window_end, COUNT(*) AS clicks
  FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
  GROUP BY user_id, window_start, window_end
) c
JOIN (
  SELECT user_id, window_start, window_end, COUNT(*) AS orders, SUM(amount) AS total
  FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ots), INTERVAL '1' MINUTE))
  GROUP BY user_id, window_start, window_end
) o
  ON c.user_id = o.user_id AND c.window_start = o.window_start AND c.window_end = o.window_end
"""),
]
