"""Writes ../test_files/data/join_clicks.json and join_orders.json: seeded clicks and orders
of a few users, for the interval join queries (join_queries.py). Orders fall before, inside
and after the interval around their user's clicks, some exactly on its edges; some rows
share a time; rows arrive out of order, but always within the 2 s watermark delay: Flink
joins a row behind the watermark with partners its cleanup timers have not removed yet,
which depends on when they fire, so late rows are left to interval_join.slt (where
Magnetar drops and counts them). Run it again only to change the data; the .slt
expectations then need Flink.
"""
import datetime
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "test_files", "data")
START = datetime.datetime(2026, 11, 24, 10, 0, 0)
USERS = ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"]


def text(ms):
    ts = START + datetime.timedelta(milliseconds=ms)
    return ts.strftime("%Y-%m-%d %H:%M:%S") + ".%03d" % (ts.microsecond // 1000)


def arrival_order(rng, events):
    """Out of order by less than 1.5 s: each row arrives at its time plus a jitter."""
    keyed = [(e["t"] + rng.choice([0, 0, 0, 200, 700, 1400]), i, e) for i, e in enumerate(events)]
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [e for _, _, e in keyed]


def write(name, events, fields):
    path = os.path.join(DATA, name)
    with open(path, "w") as f:
        for e in events:
            row = {k: (text(e["t"]) if k.endswith("ts") else e[k]) for k in fields}
            f.write(json.dumps(row) + "\n")
    print(f"{len(events)} rows in {path}")


def main():
    rng = random.Random(20)
    clicks = []
    t = 0
    for _ in range(300):
        t += rng.choice([0, 0, 500, 1000, 2000, 4000])
        clicks.append({"t": t, "user_id": rng.choice(USERS), "url": rng.choice(["/home", "/item", "/cart", "/pay"])})
    orders = []
    for n in range(160):
        c = rng.choice(clicks)
        r = rng.random()
        if r < 0.1:
            offset = -300_000  # exactly the lower edge of BETWEEN c.ts - 5 min ...
        elif r < 0.2:
            offset = 60_000  # exactly the upper edge of ... AND c.ts + 1 min
        elif r < 0.25:
            offset = 0  # the click's own time
        else:
            offset = rng.randint(-420, 120) * 1000
        orders.append({"t": max(0, c["t"] + offset), "order_id": n + 1, "user_id": c["user_id"],
                       "amount": rng.randint(1, 40) * 10})
    # A user who never orders, and orders of a user who never clicks.
    clicks.append({"t": 5000, "user_id": "u9", "url": "/home"})
    for n in range(3):
        orders.append({"t": 20_000 * (n + 1), "order_id": 1000 + n, "user_id": "u0", "amount": 70})
    clicks.sort(key=lambda e: e["t"])
    orders.sort(key=lambda e: (e["t"], e["order_id"]))
    write("join_clicks.json", arrival_order(rng, clicks), ["user_id", "url", "ts"])
    write("join_orders.json", arrival_order(rng, orders), ["order_id", "user_id", "amount", "ots"])


if __name__ == "__main__":
    main()
