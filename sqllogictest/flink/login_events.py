"""Writes ../test_files/data/logins.json: a seeded stream of login, click and purchase
events of a few users, for the MATCH_RECOGNIZE queries (match_queries.py). Bursts of
failed logins before large purchases (the fraud pattern), rising and falling amounts,
rows of equal time, rows out of order within the 2 s watermark delay, and a few rows late
beyond it. Run it again only to change the data; the .slt expectations then need Flink.
"""
import datetime
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "test_files", "data", "logins.json")
START = datetime.datetime(2026, 11, 24, 10, 0, 0)


def main():
    rng = random.Random(19)
    events = []
    for user in ["u1", "u2", "u3", "u4", "u5", "u6"]:
        t = rng.randint(0, 4000)
        for _ in range(70):
            t += rng.choice([0, 250, 500, 1000, 1500, 3000, 7000])
            r = rng.random()
            if r < 0.12:
                # A burst of failed logins, maybe a good one, then a purchase.
                for _ in range(rng.randint(2, 5)):
                    events.append((t, user, "login_failed", rng.randint(1, 40) * 10))
                    t += rng.choice([0, 500, 1000])
                if rng.random() < 0.5:
                    events.append((t, user, "login_ok", rng.randint(1, 10) * 10))
                    t += 500
                events.append((t, user, "purchase", rng.choice([120, 480, 520, 800, 950])))
            elif r < 0.55:
                events.append((t, user, "click", rng.randint(1, 60) * 5))
            elif r < 0.75:
                events.append((t, user, "purchase", rng.randint(1, 100) * 10))
            elif r < 0.9:
                events.append((t, user, "login_ok", rng.randint(1, 20) * 5))
            else:
                events.append((t, user, "login_failed", rng.randint(1, 20) * 5))
    events.sort(key=lambda e: e[0])
    # Arrival order: most in time order, some a little out of order, a few late.
    arrival = []
    for i, e in enumerate(events):
        jitter = rng.random()
        if jitter < 0.15:
            shift = rng.choice([300, 800, 1500])  # within the watermark delay
        elif jitter < 0.18:
            shift = rng.choice([4000, 9000])  # behind the watermark: late
        else:
            shift = 0
        arrival.append((e[0] + shift, i, e))
    arrival.sort()
    with open(OUT, "w") as f:
        for _, _, (t, user, action, amount) in arrival:
            ts = START + datetime.timedelta(milliseconds=t)
            text = ts.strftime("%Y-%m-%d %H:%M:%S") + ".%03d" % (ts.microsecond // 1000)
            f.write(json.dumps({"user_id": user, "action": action, "amount": amount, "ts": text}) + "\n")
    print(f"{len(arrival)} events in {OUT}")


if __name__ == "__main__":
    main()
