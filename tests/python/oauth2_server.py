"""A test fixture: an OAuth2 authorization server for the client credentials grant, as Pulsar's
AuthenticationOAuth2 plugin uses one (pulsar-lite has no authentication at all).

What real servers do, and this one copies (RFC 6749 section 4.4, OpenID Connect Discovery):
  * GET  /.well-known/openid-configuration  {"issuer", "token_endpoint", ...}
  * POST /oauth/token  form grant_type=client_credentials, client_id, client_secret[, audience,
    scope]: 200 {"access_token", "token_type": "Bearer", "expires_in"}; wrong credentials: 401
    {"error": "invalid_client"}.
  * The access token is a JWT signed with HS256 by SECRET, with `sub` = the client id and `exp`,
    which is what Pulsar's AuthenticationProviderToken checks on the broker side.
Fixture only: GET /test/grants answers {"grants": N}, the tokens granted so far; POST
/test/unavailable?count=N makes the next N token requests answer 503 (a server in trouble, as a
real one behind a load balancer answers while it restarts).

usage: oauth2_server.py SECRET CLIENT_ID CLIENT_SECRET LIFETIME_SECONDS
(prints "listening on PORT", serves until stdin closes)
"""
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

SECRET, CLIENT_ID, CLIENT_SECRET, LIFETIME = sys.argv[1].encode(), sys.argv[2], sys.argv[3], int(sys.argv[4])
grants = 0
unavailable = 0
lock = threading.Lock()


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims):
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(SECRET, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def base(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def do_GET(self):
        if self.path == "/.well-known/openid-configuration":
            self.reply(200, {"issuer": self.base(), "token_endpoint": self.base() + "/oauth/token",
                             "grant_types_supported": ["client_credentials"]})
        elif self.path == "/test/grants":
            with lock:
                self.reply(200, {"grants": grants})
        else:
            self.reply(404, {"error": "not_found"})

    def do_POST(self):
        global grants, unavailable
        if self.path.startswith("/test/unavailable?count="):
            with lock:
                unavailable = int(self.path.split("=", 1)[1])
            self.reply(200, {"unavailable": unavailable})
            return
        if self.path != "/oauth/token":
            self.reply(404, {"error": "not_found"})
            return
        with lock:
            if unavailable > 0:
                unavailable -= 1
                self.reply(503, {"error": "temporarily_unavailable"})
                return
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            self.reply(400, {"error": "unsupported_grant_type"})
        elif form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            self.reply(401, {"error": "invalid_client"})
        else:
            with lock:
                grants += 1
            token = jwt({"sub": CLIENT_ID, "exp": int(time.time()) + LIFETIME})
            self.reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": LIFETIME})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening on {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
