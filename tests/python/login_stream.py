"""Keyed login, click and purchase events for the MATCH_RECOGNIZE end-to-end tests,
produced with the official Pulsar client. Users now and then fail to log in several times,
maybe log in, then buy something large (the fraud pattern). The events are also written,
as produced, to a file: the test runs its own reference matcher over them.

Event i has a random user (the message key) and an event time of BASE + 10 ms * i minus
up to 900 ms of disorder, so with a one-second watermark delay no event is ever late.

usage: login_stream.py produce SERVICE_URL TOPIC COUNT SEED RATE EVENTS_FILE
         produces COUNT events at about RATE per second (0: as fast as possible); writes
         them as JSON lines {"user_id", "action", "amount", "ts_ms"} to EVENTS_FILE
       login_stream.py sentinel SERVICE_URL TOPIC COUNT PARTITIONS
         one event ten minutes after the last of COUNT events to each partition: the
         watermark then passes every event of the COUNT
"""
import json
import random
import sys

from click_stream import client_for, send_all, send_to_every_partition, ts_text

BASE_MS = 1_795_000_000_000
USERS = 40


def events(count, seed):
    rng = random.Random(seed)
    plans = {}  # user -> actions still to come in an attack
    for i in range(count):
        user = f"user-{rng.randrange(USERS):02d}"
        plan = plans.get(user)
        if not plan and rng.random() < 0.04:
            plan = ["login_failed"] * rng.randint(2, 6)
            if rng.random() < 0.5:
                plan.append("login_ok")
            plan.append("purchase!")
            plans[user] = plan
        if plan:
            action = plan.pop(0)
        else:
            action = rng.choices(["click", "purchase", "login_ok", "login_failed"], [60, 15, 15, 10])[0]
        if action == "purchase!":
            action, amount = "purchase", rng.choice([300, 520, 700, 990, 1500])
        elif action == "login_failed":
            amount = rng.randint(1, 40) * 10
        else:
            amount = rng.randint(1, 120) * 10
        ts = BASE_MS + 10 * i - rng.randrange(900)
        yield {"user_id": user, "action": action, "amount": amount, "ts_ms": ts}


def produce(url, topic, count, seed, rate, events_path):
    payloads = []
    with open(events_path, "w", encoding="utf-8") as f:
        for e in events(count, seed):
            f.write(json.dumps(e) + "\n")
            value = {"user_id": e["user_id"], "action": e["action"], "amount": e["amount"], "ts": ts_text(e["ts_ms"])}
            payloads.append((e["user_id"], json.dumps(value)))
    client = client_for(url)
    try:
        send_all(client, topic, payloads, rate)
    finally:
        client.close()


def sentinel(url, topic, count, partitions):
    ts = BASE_MS + 10 * count + 600_000
    payload = json.dumps({"user_id": "sentinel", "action": "click", "amount": 0, "ts": ts_text(ts)})
    send_to_every_partition(url, topic, partitions, payload)


def main():
    command = sys.argv[1]
    if command == "produce":
        url, topic, count, seed, rate, path = sys.argv[2:8]
        produce(url, topic, int(count), int(seed), float(rate), path)
    elif command == "sentinel":
        url, topic, count, partitions = sys.argv[2:6]
        sentinel(url, topic, int(count), int(partitions))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
