"""Produces messages from a JSON-lines file with the official Pulsar client.

Each line is {"key": str or null, "value": str}; the value is sent as its UTF-8 bytes.
usage: produce_lines.py SERVICE_URL TOPIC FILE batch|nobatch
"""
import json
import sys

import pulsar


def main():
    service_url, topic, path, mode = sys.argv[1:5]
    client = pulsar.Client(service_url, operation_timeout_seconds=30, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        producer = client.create_producer(
            topic,
            batching_enabled=(mode == "batch"),
            batching_max_messages=1000,
            batching_max_publish_delay_ms=5,
            block_if_queue_full=True,
        )
        failures = []

        def sent(res, _msg_id):
            if res != pulsar.Result.Ok:
                failures.append(str(res))

        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                m = json.loads(line)
                kwargs = {}
                if m.get("key") is not None:
                    kwargs["partition_key"] = m["key"]
                producer.send_async(m["value"].encode("utf-8"), sent, **kwargs)
        producer.flush()
        if failures:
            sys.exit("send failures: " + ", ".join(failures[:5]))
        try:
            producer.close()
        except pulsar.Timeout:
            # Every send was confirmed by flush(); pulsar-lite sometimes lets CLOSE_PRODUCER
            # time out while it is busy dispatching (seen with Key_Shared consumers).
            print("warning: producer close timed out after all sends were confirmed", file=sys.stderr)
    finally:
        try:
            client.close()
        except pulsar.PulsarException:
            pass


if __name__ == "__main__":
    main()
