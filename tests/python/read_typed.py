"""Reads a topic with the official Pulsar client, decoding each message with a typed schema
of the Alert record (AvroSchema or JsonSchema), and prints each record, with the message's
key, event time and properties, as a JSON line.

pulsar-lite never answers GET_SCHEMA, so `msg.value()` (which downloads the writer schema
by version) would wait for the client's timeout; the messages are decoded with the reader's
own schema object instead, as `msg.value()` does when the writer schema is the reader's.
usage: read_typed.py SERVICE_URL TOPIC avro|json
"""
import json
import sys

import pulsar
from pulsar.schema import AvroSchema, JsonSchema

from typed_records import Alert


def main():
    service_url, topic, kind = sys.argv[1:4]
    schema = AvroSchema(Alert) if kind == "avro" else JsonSchema(Alert)
    client = pulsar.Client(service_url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    reader = client.create_reader(topic, pulsar.MessageId.earliest, schema=schema)
    while reader.has_message_available():
        msg = reader.read_next(timeout_millis=30000)
        record = schema.decode(msg.data())
        print(json.dumps({"user_id": record.user_id, "clicks": record.clicks,
                          "total_dwell": record.total_dwell, "key": msg.partition_key(),
                          "event_time": msg.event_timestamp(),
                          "properties": msg.properties()}), flush=True)
    reader.close()
    client.close()


if __name__ == "__main__":
    main()
