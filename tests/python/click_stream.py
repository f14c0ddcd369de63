"""Keyed click events for the crash tests, produced with the official Pulsar client at a
steady rate, and the per-user 10-second tumbling-window results they must give, computed
here, independently of Magnetar.

Event i has a random user (the message key), a random dwell time, and an event time of
BASE + 10 ms * i minus up to 900 ms of disorder, so with a one-second watermark delay no
event is ever late and every window's result is fully determined by the input.

usage: click_stream.py produce SERVICE_URL TOPIC COUNT SEED RATE EXPECTED_FILE
         produces COUNT events at about RATE per second; writes the expected results as JSON
         lines {"window_start": seconds, "user_id", "clicks", "dwell"} to EXPECTED_FILE
       click_stream.py sentinel SERVICE_URL TOPIC COUNT [PARTITIONS]
         produces one event a minute after the last of COUNT events: its watermark closes
         every window of the COUNT events (its own window stays open); to a topic of
         PARTITIONS partitions, one such event to each partition (each holds its own watermark)
"""
import json
import random
import sys
import time
from datetime import datetime, timezone

import pulsar

BASE_MS = 1_795_000_000_000  # 2026-11-18, a whole number of 10-second windows
WINDOW_MS = 10_000
USERS = 50


def ts_text(ms):
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def events(count, seed):
    rng = random.Random(seed)
    for i in range(count):
        user = f"user-{rng.randrange(USERS):02d}"
        ts = BASE_MS + 10 * i - rng.randrange(900)
        yield {"user_id": user, "url": f"/page/{rng.randrange(20)}", "dwell_ms": rng.randrange(1, 5000), "ts": ts}


def client_for(url):
    return pulsar.Client(url, operation_timeout_seconds=30, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))


def send_all(client, topic, payloads, rate):
    producer = client.create_producer(
        topic,
        batching_enabled=True,
        batching_max_messages=500,
        batching_max_publish_delay_ms=5,
        block_if_queue_full=True,
    )
    failures = []

    def sent(res, _msg_id):
        if res != pulsar.Result.Ok:
            failures.append(str(res))

    started = time.monotonic()
    for n, (key, value) in enumerate(payloads, start=1):
        producer.send_async(value.encode("utf-8"), sent, partition_key=key)
        if rate and n % 1000 == 0:
            # Pace the input so the job runs (and is killed) while it arrives.
            ahead = n / rate - (time.monotonic() - started)
            if ahead > 0:
                producer.flush()
                time.sleep(ahead)
    producer.flush()
    if failures:
        sys.exit("send failures: " + ", ".join(failures[:5]))
    producer.close()


def produce(url, topic, count, seed, rate, expected_path):
    expected = {}
    payloads = []
    for e in events(count, seed):
        window = e["ts"] // WINDOW_MS * WINDOW_MS // 1000
        acc = expected.setdefault((window, e["user_id"]), [0, 0])
        acc[0] += 1
        acc[1] += e["dwell_ms"]
        payloads.append((e["user_id"], json.dumps({**e, "ts": ts_text(e["ts"])})))
    with open(expected_path, "w", encoding="utf-8") as f:
        for (window, user), (clicks, dwell) in sorted(expected.items()):
            f.write(json.dumps({"window_start": window, "user_id": user, "clicks": clicks, "dwell": dwell}) + "\n")
    client = client_for(url)
    try:
        send_all(client, topic, payloads, rate)
    finally:
        client.close()


def send_to_every_partition(url, topic, partitions, payload):
    """One message keyed `sentinel` to each partition of `topic` (or to the topic itself)."""
    targets = [f"{topic}-partition-{i}" for i in range(partitions)] if partitions else [topic]
    client = client_for(url)
    try:
        for target in targets:
            send_all(client, target, [("sentinel", payload)], 0)
    finally:
        client.close()


def sentinel(url, topic, count, partitions):
    ts = BASE_MS + 10 * count + 60_000
    payload = json.dumps({"user_id": "sentinel", "url": "/", "dwell_ms": 0, "ts": ts_text(ts)})
    send_to_every_partition(url, topic, partitions, payload)


def main():
    command = sys.argv[1]
    if command == "produce":
        url, topic, count, seed, rate, expected = sys.argv[2:8]
        produce(url, topic, int(count), int(seed), float(rate), expected)
    elif command == "sentinel":
        url, topic, count = sys.argv[2:5]
        partitions = int(sys.argv[5]) if len(sys.argv) > 5 else 0
        sentinel(url, topic, int(count), partitions)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
