"""Produces or reads messages with the official Pulsar client over TLS and/or a token, so that
the secured test fixtures are checked by a client other than Magnetar.

usage: secure_client.py produce|read|shared SERVICE_URL TOPIC [--ca FILE] [--token TOKEN]
       [--oauth2 JSON] [--count N]
  produce: sends N messages `{"n": i}`; exit 0 when all were acknowledged.
  read:    reads from the earliest to the topic's end; prints one JSON line per message value.
  shared:  receives on a new Shared subscription from the earliest message until none comes for
           3 s (delayed messages are only held back for Shared subscriptions); prints each value.
A refused connection exits 3 with the client's error on stderr.
"""
import argparse
import json
import sys

import pulsar


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["produce", "read", "shared"])
    parser.add_argument("service_url")
    parser.add_argument("topic")
    parser.add_argument("--ca")
    parser.add_argument("--token")
    parser.add_argument("--oauth2", help="AuthenticationOauth2 parameters, JSON")
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()
    options = dict(operation_timeout_seconds=10, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    if args.ca:
        options.update(tls_trust_certs_file_path=args.ca, tls_validate_hostname=True,
                       tls_allow_insecure_connection=False)
    if args.token:
        options["authentication"] = pulsar.AuthenticationToken(args.token)
    if args.oauth2:
        options["authentication"] = pulsar.AuthenticationOauth2(args.oauth2)
    client = pulsar.Client(args.service_url, **options)
    try:
        if args.mode == "produce":
            producer = client.create_producer(args.topic, batching_enabled=False)
            for i in range(args.count):
                producer.send(json.dumps({"n": i}).encode("utf-8"))
            producer.flush()
            producer.close()
            print(f"sent {args.count}")
        elif args.mode == "shared":
            consumer = client.subscribe(args.topic, "delayed-check",
                                        consumer_type=pulsar.ConsumerType.Shared,
                                        initial_position=pulsar.InitialPosition.Earliest)
            while True:
                try:
                    msg = consumer.receive(timeout_millis=3000)
                except pulsar.Timeout:
                    break
                print(msg.data().decode("utf-8"))
                consumer.acknowledge(msg)
            consumer.close()
        else:
            reader = client.create_reader(args.topic, pulsar.MessageId.earliest)
            while reader.has_message_available():
                msg = reader.read_next(timeout_millis=10000)
                print(msg.data().decode("utf-8"))
            reader.close()
    except Exception as e:  # the client raises its own exception types per failure
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(3)
    finally:
        client.close()


if __name__ == "__main__":
    main()
