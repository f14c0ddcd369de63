"""Reads every message of a topic with the official Pulsar client and prints one JSON line
per message: key, value (UTF-8 text), message id, properties, event time.

Reads from the earliest message to the topic's end as of the start (has_message_available).
usage: read_topic.py SERVICE_URL TOPIC
"""
import json
import sys

import pulsar


def main():
    service_url, topic = sys.argv[1], sys.argv[2]
    client = pulsar.Client(service_url, operation_timeout_seconds=30, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        reader = client.create_reader(topic, pulsar.MessageId.earliest)
        out = sys.stdout
        try:
            available = reader.has_message_available()
        except pulsar.UnknownError:
            # pulsar-lite answers GET_LAST_MESSAGE_ID on a topic with no message yet with an
            # error (real Pulsar answers with an empty position): nothing to read.
            print("warning: GET_LAST_MESSAGE_ID failed; reading the topic as empty", file=sys.stderr)
            available = False
        seen = set()
        stalls = 0
        while available:
            try:
                msg = reader.read_next(timeout_millis=10000)
            except pulsar.Timeout:
                # pulsar-lite sometimes stops dispatching to a consumer that has permits
                # (connectors/README.md, item 11); it resumes for a new subscription. Read
                # again from the start (also right for partitioned topics) and skip what was
                # printed already.
                stalls += 1
                if stalls > 3:
                    raise
                print(f"warning: dispatch stalled after {len(seen)} messages; reading again", file=sys.stderr)
                reader.close()
                reader = client.create_reader(topic, pulsar.MessageId.earliest)
                available = reader.has_message_available()
                continue
            if str(msg.message_id()) in seen:
                available = reader.has_message_available()
                continue
            seen.add(str(msg.message_id()))
            out.write(json.dumps({
                "key": msg.partition_key() or None,
                "value": msg.data().decode("utf-8", errors="replace"),
                "message_id": str(msg.message_id()),
                "properties": msg.properties(),
                "event_time": msg.event_timestamp(),
                "publish_time": msg.publish_timestamp(),
            }) + "\n")
            available = reader.has_message_available()
        reader.close()
    finally:
        client.close()


if __name__ == "__main__":
    main()
