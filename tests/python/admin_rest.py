"""A test fixture that serves some of Pulsar's admin REST API, because pulsar-lite has no
admin API: the Schema Registry endpoints, and a topic's managed-ledger views that tell
which ledgers were offloaded to tiered storage.

What real Pulsar does, and what this fixture copies (SchemasResource / SchemasResourceBase,
GetSchemaResponse, pulsar-storage-formats.md section 7):
  * GET  /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema            latest version
  * GET  /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema/{version}  that version
  * GET  /admin/v2/schemas/{tenant}/{namespace}/{topic}/schemas           every version
  * POST /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema            register (what a
    broker does when a producer connects with a new schema; `pulsar-admin schemas upload`)
    with a PostSchemaPayload {"type", "schema", "properties"}; answers {"version": N}.
  * A GetSchemaResponse is {"version", "type", "timestamp", "data", "properties"}; `type` is
    the Java SchemaType name; versions count from 0 per topic; KEY_VALUE data is the REST
    form {"key": <schema or "">, "value": <schema or "">} (the caller registers it so).
  * Schemas are keyed by the base topic: a `-partition-N` suffix is stripped.
  * A broker that does not own the topic answers 307 to the owner; this fixture answers
    every request without `authoritative` with a 307 to itself (`?authoritative=false`), so
    clients must follow redirects as they must with real Pulsar.
  * Not found: 404 with {"reason": ...}.
Not copied: authentication, compatibility checks between versions, deletion.

Offloaded ledgers (PersistentTopics, ManagedLedgerInfo, PersistentTopicInternalStats;
pulsar-storage-formats.md section 5.4):
  * GET /admin/v2/persistent/{tenant}/{namespace}/{topic}/internal-info  the metadata
    store's ledger list: {"version", "creationDate", "modificationDate", "ledgers": [{
    "ledgerId", "entries", "size", "timestamp", "isOffloaded", "offloadedContextUuid"}],
    "cursors", "properties"}; `isOffloaded` is true even for an incomplete offload.
  * GET /admin/v2/persistent/{tenant}/{namespace}/{topic}/internalStats  {"entriesAddedCounter",
    "numberOfEntries", "totalSize", "state", "ledgers": [{"ledgerId", "entries", "size",
    "offloaded", "underReplicated"}], "cursors", ...}; `offloaded` is true only once the
    offload completed. Keys are partitions (`-partition-N`), as the broker's are.
  * Real brokers learn these by offloading; this fixture is told by the test, with
    PUT /test/offloaded-ledgers/{tenant}/{namespace}/{topic} and a body {"ledgers": [{
    "ledgerId", "entries", "size", "uuid", "complete"}]} (a fixture-only endpoint); a ledger
    with "uuid": null is one the broker still holds (not offloaded), as the current ledger is.

Namespace topic lists (Namespaces.getTopics):
  * GET /admin/v2/namespaces/{tenant}/{namespace}/topics  a JSON list of the namespace's
    persistent topics, full names, a partitioned topic as its partitions
    (`persistent://t/ns/x-partition-0`, ...), as the broker answers it.
  * Real brokers know their topics; this fixture is told by the test with
    PUT /test/namespace-topics/{tenant}/{namespace} and a body {"topics": [...]}.

Fixture-only: GET /test/last-authorization answers {"authorization": the Authorization header
of the last /admin/ request, or null}, so tests can check the credentials clients send
(real Pulsar checks them with its authentication providers; this fixture only records them).

usage: admin_rest.py  (prints "listening on PORT", serves until stdin closes)
"""
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

PATH = re.compile(r"^/admin/v2/schemas/([^/]+)/([^/]+)/([^/]+)/(schema|schemas)(?:/(-?\d+))?$")
PARTITION = re.compile(r"-partition-\d+$")

TOPIC_PATH = re.compile(r"^/admin/v2/persistent/([^/]+)/([^/]+)/([^/]+)/(internal-info|internalStats)$")
CONTROL_PATH = re.compile(r"^/test/offloaded-ledgers/([^/]+)/([^/]+)/([^/]+)$")
NAMESPACE_PATH = re.compile(r"^/admin/v2/namespaces/([^/]+)/([^/]+)/topics$")
NAMESPACE_CONTROL_PATH = re.compile(r"^/test/namespace-topics/([^/]+)/([^/]+)$")

schemas = {}  # base topic -> [GetSchemaResponse]
last_authorization = [None]  # the Authorization header of the last /admin/ request
namespace_topics = {}  # tenant/namespace -> [full topic names]
offloaded = {}  # tenant/namespace/topic (partition) -> [{ledgerId, entries, size, uuid, complete}]
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def route(self):
        url = urlsplit(self.path)
        m = PATH.match(url.path)
        if not m:
            self.reply(404, {"reason": "Not Found"})
            return None
        if "authoritative" not in parse_qs(url.query):
            # As a broker that does not own the topic: redirect to the owner (here, itself).
            self.send_response(307)
            self.send_header("Location", url.path + "?authoritative=false")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        tenant, namespace, topic, what, version = m.groups()
        key = f"{tenant}/{namespace}/{PARTITION.sub('', topic)}"
        return key, what, version

    def topic_view(self, path):
        m = TOPIC_PATH.match(path)
        tenant, namespace, topic, what = m.groups()
        with lock:
            ledgers = list(offloaded.get(f"{tenant}/{namespace}/{topic}", []))
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        if what == "internal-info":
            self.reply(200, {
                "version": 1,
                "creationDate": now,
                "modificationDate": now,
                "ledgers": [{
                    "ledgerId": l["ledgerId"],
                    "entries": l["entries"],
                    "size": l["size"],
                    "timestamp": int(time.time() * 1000),
                    "isOffloaded": l.get("uuid") is not None,
                    **({"offloadedContextUuid": l["uuid"]} if l.get("uuid") is not None else {}),
                } for l in ledgers],
                "cursors": {},
                "properties": {},
            })
        else:
            self.reply(200, {
                "entriesAddedCounter": sum(l["entries"] for l in ledgers),
                "numberOfEntries": sum(l["entries"] for l in ledgers),
                "totalSize": sum(l["size"] for l in ledgers),
                "currentLedgerEntries": 0,
                "currentLedgerSize": 0,
                "lastLedgerCreatedTimestamp": now,
                "waitingCursorsCount": 0,
                "pendingAddEntriesCount": 0,
                "lastConfirmedEntry": "-1:-1",
                "state": "LedgerOpened",
                "ledgers": [{
                    "ledgerId": l["ledgerId"],
                    "entries": l["entries"],
                    "size": l["size"],
                    "offloaded": bool(l["complete"]),
                    "underReplicated": False,
                } for l in ledgers],
                "cursors": {},
                "schemaLedgers": [],
            })

    def do_PUT(self):
        ns = NAMESPACE_CONTROL_PATH.match(urlsplit(self.path).path)
        if ns:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                namespace_topics["/".join(ns.groups())] = list(payload["topics"])
            self.reply(200, {})
            return
        m = CONTROL_PATH.match(urlsplit(self.path).path)
        if not m:
            self.reply(404, {"reason": "Not Found"})
            return
        length = int(self.headers.get("Content-Length", "0"))
        payload = json.loads(self.rfile.read(length) or b"{}")
        with lock:
            offloaded["/".join(m.groups())] = payload["ledgers"]
        self.reply(200, {})

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/test/last-authorization":
            self.reply(200, {"authorization": last_authorization[0]})
            return
        if path.startswith("/admin/"):
            last_authorization[0] = self.headers.get("Authorization")
        ns = NAMESPACE_PATH.match(urlsplit(self.path).path)
        if ns:
            key = "/".join(ns.groups())
            with lock:
                known = key in namespace_topics
                topics = list(namespace_topics.get(key, []))
            if known:
                self.reply(200, topics)
            else:
                self.reply(404, {"reason": "Namespace does not exist"})
            return
        if TOPIC_PATH.match(urlsplit(self.path).path):
            self.topic_view(urlsplit(self.path).path)
            return
        routed = self.route()
        if routed is None:
            return
        key, what, version = routed
        with lock:
            versions = list(schemas.get(key, []))
        if what == "schemas":
            self.reply(200, {"getSchemaResponses": versions})
        elif not versions:
            self.reply(404, {"reason": "Schema not found"})
        elif version is None:
            self.reply(200, versions[-1])
        else:
            v = int(version)
            if 0 <= v < len(versions):
                self.reply(200, versions[v])
            else:
                self.reply(404, {"reason": "Not Found"})

    def do_POST(self):
        routed = self.route()
        if routed is None:
            return
        key, what, _ = routed
        length = int(self.headers.get("Content-Length", "0"))
        payload = json.loads(self.rfile.read(length) or b"{}")
        with lock:
            versions = schemas.setdefault(key, [])
            same = [s for s in versions
                    if s["type"] == payload["type"] and s["data"] == payload.get("schema", "")]
            if same:
                version = same[0]["version"]
            else:
                version = len(versions)
                versions.append({
                    "version": version,
                    "type": payload["type"],
                    "timestamp": int(time.time() * 1000),
                    "data": payload.get("schema", ""),
                    "properties": payload.get("properties", {}),
                })
        self.reply(200, {"version": version})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening on {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
