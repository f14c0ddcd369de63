"""Keyed clicks and orders on two topics for the interval join end-to-end tests, produced
with the official Pulsar client, interleaved as they happen. Most users click now and then;
some order without having clicked for a while (what the job alerts on). The events are also
written, as produced, to a file: the test computes the alerts itself from them.

Event i has a random user (the message key) and an event time of BASE + 1 s * i minus up
to 900 ms of disorder, so with a one-second watermark delay no event is ever late.

usage: order_stream.py produce SERVICE_URL CLICKS ORDERS COUNT SEED RATE EVENTS_FILE
         produces COUNT events at about RATE per second (0: as fast as possible); writes
         them as JSON lines {"kind", "user_id", "order_id", "ts_ms"} to EVENTS_FILE
       order_stream.py sentinel SERVICE_URL CLICKS ORDERS COUNT PARTITIONS
         a click and an order an hour after the last of COUNT events to each partition of
         both topics: the watermark then passes every event of the COUNT
"""
import json
import random
import sys
import time

import pulsar

from click_stream import client_for, send_to_every_partition, ts_text

BASE_MS = 1_795_000_000_000
USERS = 400


def events(count, seed):
    rng = random.Random(seed)
    for i in range(count):
        user = f"user-{rng.randrange(USERS):03d}"
        ts = BASE_MS + 1000 * i - rng.randrange(900)
        if rng.random() < 0.7:
            yield {"kind": "click", "user_id": user, "order_id": None, "ts_ms": ts}
        else:
            yield {"kind": "order", "user_id": user, "order_id": i, "ts_ms": ts}


def producer_for(client, topic):
    return client.create_producer(
        topic,
        batching_enabled=True,
        batching_max_messages=500,
        batching_max_publish_delay_ms=5,
        block_if_queue_full=True,
    )


def produce(url, clicks, orders, count, seed, rate, events_path):
    client = client_for(url)
    failures = []

    def sent(res, _msg_id):
        if res != pulsar.Result.Ok:
            failures.append(str(res))

    try:
        producers = {"click": producer_for(client, clicks), "order": producer_for(client, orders)}
        started = time.monotonic()
        with open(events_path, "w", encoding="utf-8") as f:
            for n, e in enumerate(events(count, seed), start=1):
                f.write(json.dumps(e) + "\n")
                if e["kind"] == "click":
                    value = {"user_id": e["user_id"], "url": "/item", "ts": ts_text(e["ts_ms"])}
                else:
                    value = {"order_id": e["order_id"], "user_id": e["user_id"], "ots": ts_text(e["ts_ms"])}
                producers[e["kind"]].send_async(json.dumps(value).encode("utf-8"), sent, partition_key=e["user_id"])
                if rate and n % 1000 == 0:
                    # Pace the input so the job runs (and is killed) while it arrives.
                    ahead = n / rate - (time.monotonic() - started)
                    if ahead > 0:
                        for p in producers.values():
                            p.flush()
                        time.sleep(ahead)
        for p in producers.values():
            p.flush()
            p.close()
        if failures:
            sys.exit("send failures: " + ", ".join(failures[:5]))
    finally:
        client.close()


def sentinel(url, clicks, orders, count, partitions):
    ts = ts_text(BASE_MS + 1000 * count + 3_600_000)
    send_to_every_partition(url, clicks, partitions, json.dumps({"user_id": "sentinel", "url": "/", "ts": ts}))
    send_to_every_partition(url, orders, partitions, json.dumps({"order_id": -1, "user_id": "sentinel", "ots": ts}))


def main():
    command = sys.argv[1]
    if command == "produce":
        url, clicks, orders, count, seed, rate, path = sys.argv[2:9]
        produce(url, clicks, orders, int(count), int(seed), float(rate), path)
    elif command == "sentinel":
        url, clicks, orders, count, partitions = sys.argv[2:7]
        sentinel(url, clicks, orders, int(count), int(partitions))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
