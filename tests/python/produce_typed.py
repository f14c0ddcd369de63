"""Produces records with the official Pulsar client and its typed schemas, and registers the
schema in the test registry first, as a real broker registers a producer's schema.

usage: produce_typed.py SERVICE_URL ADMIN_URL TOPIC KIND FILE
KIND: avro | json | string | kv-inline | kv-separated | protobuf
FILE: JSON lines {"key": str|null, "properties": {..}, "event_time": ms|0, "value": ..., "key_value": ..}
  avro/json: "value" is a Click's fields; string: "value" is the text;
  kv-inline: "key_value" is a ClickKey's fields and "value" a Click's (key AVRO, value JSON,
  laid out as Java's KeyValueSchema INLINE encoding: [int32 len][key][int32 len][value]);
  kv-separated: "key" is the STRING key, "value" a Click's fields (AVRO payload);
  protobuf: "value" holds shop.Click's fields (typed_records.protobuf_click), sent with the
  client's ProtobufNativeSchema.
Prints one line per message: its message id as (ledger,entry,partition,batch).
"""
import json
import struct
import sys
import urllib.request

import pulsar
from pulsar.schema import AvroSchema, JsonSchema, StringSchema

from typed_records import Click, ClickKey


def register(admin_url, topic, payload):
    tenant, namespace, name = topic.split("://", 1)[1].split("/")
    url = f"{admin_url}/admin/v2/schemas/{tenant}/{namespace}/{name}/schema?authoritative=false"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())["version"]


def kv_payload(kind, key_schema, value_schema, encoding):
    return {
        "type": "KEY_VALUE",
        # The REST form of a KEY_VALUE schema's data, as the registry answers it.
        "schema": json.dumps({"key": key_schema, "value": value_schema}),
        "properties": {
            "key.schema.name": kind[0], "key.schema.type": kind[0],
            "key.schema.properties": "{}",
            "value.schema.name": kind[1], "value.schema.type": kind[1],
            "value.schema.properties": json.dumps({"__alwaysAllowNull": "true"}),
            "kv.encoding.type": encoding,
        },
    }


def main():
    service_url, admin_url, topic, kind, path = sys.argv[1:6]
    client = pulsar.Client(service_url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    if kind == "avro":
        schema = AvroSchema(Click)
        register(admin_url, topic, {"type": "AVRO", "schema": json.dumps(Click.schema()),
                                    "properties": {"__alwaysAllowNull": "true"}})
    elif kind == "json":
        schema = JsonSchema(Click)
        register(admin_url, topic, {"type": "JSON", "schema": json.dumps(Click.schema()),
                                    "properties": {"__alwaysAllowNull": "true"}})
    elif kind == "string":
        schema = StringSchema()
        register(admin_url, topic, {"type": "STRING", "schema": "", "properties": {}})
    elif kind == "kv-inline":
        schema = None
        register(admin_url, topic, kv_payload(("AVRO", "JSON"), ClickKey.schema(), Click.schema(), "INLINE"))
    elif kind == "kv-separated":
        schema = None
        register(admin_url, topic, kv_payload(("STRING", "AVRO"), "", Click.schema(), "SEPARATED"))
    elif kind == "protobuf":
        from pulsar.schema.schema_protobuf import ProtobufNativeSchema, _build_schema_definition
        from typed_records import protobuf_click
        cls = protobuf_click()
        schema = ProtobufNativeSchema(cls)
        register(admin_url, topic, {"type": "PROTOBUF_NATIVE",
                                    "schema": json.dumps(_build_schema_definition(cls.DESCRIPTOR)),
                                    "properties": {}})
    else:
        raise SystemExit(f"unknown kind {kind}")
    producer = (client.create_producer(topic, schema=schema, batching_enabled=False)
                if schema is not None else client.create_producer(topic, batching_enabled=False))
    with open(path) as f:
        for line in f:
            m = json.loads(line)
            args = {"properties": m.get("properties") or {}}
            if m.get("key") is not None:
                args["partition_key"] = m["key"]
            if m.get("event_time"):
                args["event_timestamp"] = m["event_time"]
            if kind in ("avro", "json"):
                content = Click(**m["value"])
            elif kind == "string":
                content = m["value"]
            elif kind == "protobuf":
                v = dict(m["value"])
                ts = v.pop("ts_seconds")
                content = cls(**{k: x for k, x in v.items() if x is not None})
                content.ts.seconds = ts
                content.ts.nanos = 5
            elif kind == "kv-inline":
                key = AvroSchema(ClickKey).encode(ClickKey(**m["key_value"]))
                value = JsonSchema(Click).encode(Click(**m["value"]))
                content = struct.pack(">i", len(key)) + key + struct.pack(">i", len(value)) + value
            else:
                content = AvroSchema(Click).encode(Click(**m["value"]))
            message_id = producer.send(content, **args)
            print(str(message_id), flush=True)
    producer.close()
    client.close()


if __name__ == "__main__":
    main()
