-- The clickstream demo: users clicking more than 15 times in 10 seconds are flagged, and so
-- are sessions that fail to log in three times or more in a row and then confirm a checkout
-- within a minute (a pattern, MATCH_RECOGNIZE).
-- `magnetar demo` runs this against an embedded broker; with your own broker:
--   magnetar --service-url pulsar://localhost:6650 -f cli/examples/clickstream.sql

CREATE TABLE clicks (
  event_id   STRING,
  user_id    STRING,
  url        STRING,
  ip         STRING,
  user_agent STRING,
  country    STRING,
  dwell_ms   INT,
  ts         TIMESTAMP(3),
  -- Event time: clicks arrive up to 2 seconds out of order.
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'pulsar',
  'topics' = 'persistent://public/default/click-events',
  'format' = 'json',
  'source.subscription-name' = 'fraud-detector',
  'source.subscription-type' = 'Failover'
);

CREATE TABLE fraud_alerts (
  user_id      STRING,
  window_start TIMESTAMP(3),
  window_end   TIMESTAMP(3),
  clicks       BIGINT,
  pages        BIGINT,
  ips          BIGINT
) WITH (
  'connector' = 'pulsar',
  'topics' = 'persistent://public/default/fraud-alerts',
  'format' = 'json',
  'key.fields' = 'user_id'
);

CREATE TABLE pattern_alerts (
  user_id       STRING,
  first_failure TIMESTAMP(3),
  failures      BIGINT,
  confirmed_at  TIMESTAMP(3)
) WITH (
  'connector' = 'pulsar',
  'topics' = 'persistent://public/default/pattern-alerts',
  'format' = 'json',
  'key.fields' = 'user_id'
);

SET 'pipeline.name' = 'fraud-detector';

-- One job, one read of the clicks, two outputs.
EXECUTE STATEMENT SET
BEGIN
  -- One alert per user and 10-second window with more than 15 clicks, written once the
  -- watermark has passed the window's end.
  INSERT INTO fraud_alerts
  SELECT user_id, window_start, window_end,
         count(*) AS clicks, count(DISTINCT url) AS pages, count(DISTINCT ip) AS ips
  FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
  GROUP BY window_start, window_end, user_id
  HAVING count(*) > 15;

  -- Three or more failed logins in a row, then a confirmed checkout, within a minute.
  INSERT INTO pattern_alerts
  SELECT * FROM clicks
  MATCH_RECOGNIZE (
    PARTITION BY user_id
    ORDER BY ts
    MEASURES FIRST(F.ts) AS first_failure, COUNT(F.url) AS failures, C.ts AS confirmed_at
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (F{3,} C) WITHIN INTERVAL '1' MINUTE
    DEFINE
      F AS F.url = '/login?failed',
      C AS C.url = '/checkout/confirm'
  );
END;
