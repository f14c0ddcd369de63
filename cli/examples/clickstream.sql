-- The clickstream demo: flag suspicious clicks as they arrive.
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
  ts         TIMESTAMP(3)
) WITH (
  'connector' = 'pulsar',
  'topics' = 'persistent://public/default/click-events',
  'format' = 'json',
  'source.subscription-name' = 'fraud-detector',
  'source.subscription-type' = 'Failover'
);

CREATE TABLE fraud_alerts (
  event_id STRING,
  user_id  STRING,
  ip       STRING,
  url      STRING,
  reason   STRING,
  ts       TIMESTAMP(3)
) WITH (
  'connector' = 'pulsar',
  'topics' = 'persistent://public/default/fraud-alerts',
  'format' = 'json',
  'key.fields' = 'user_id'
);

SET 'pipeline.name' = 'fraud-detector';

-- Scripted clients, and checkouts completed faster than a person can click.
INSERT INTO fraud_alerts
SELECT event_id, user_id, ip, url,
       CASE
         WHEN regexp_like(user_agent, '(?i)(bot|crawler|curl|python-requests)') THEN 'automated user agent'
         ELSE concat('checkout in ', CAST(dwell_ms AS STRING), ' ms')
       END AS reason,
       ts
FROM clicks
WHERE regexp_like(user_agent, '(?i)(bot|crawler|curl|python-requests)')
   OR (url LIKE '/checkout%' AND dwell_ms < 300);
