#!/usr/bin/python3
"""A station's URL authentication backend, as Icecast's auth_url expects one,
for the tests: prints "PORT <n>" once listening on 127.0.0.1, appends every
form it is POSTed to LOG (one JSON object per line) and answers:

  listener_add  user good/pw: accepted; user brief: accepted for 3 s;
                user slow: accepted after 10 s; anyone else: refused with
                "Subscription expired".
  stream_auth   user dj/booth: accepted; anyone else refused.
  others        200.

Requests without the Basic credentials floe:backend-secret get a 401.
"""
import base64
import json
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = sys.argv[1]
EXPECTED = "Basic " + base64.b64encode(b"floe:backend-secret").decode()


class Backend(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()}
        with open(LOG, "a") as log:
            log.write(json.dumps(form) + "\n")
        if self.headers.get("Authorization") != EXPECTED:
            self.answer(401, {})
            return
        action, user, password = form.get("action"), form.get("user"), form.get("pass")
        accept = {"icecast-auth-user": "1"}
        refuse = {"icecast-auth-user": "0", "icecast-auth-message": "Subscription expired"}
        if action == "listener_add":
            if user == "good" and password == "pw":
                self.answer(200, accept)
            elif user == "brief":
                self.answer(200, dict(accept, **{"icecast-auth-timelimit": "3"}))
            elif user == "slow":
                time.sleep(10)
                self.answer(200, accept)
            else:
                self.answer(200, refuse)
        elif action == "stream_auth":
            self.answer(200, accept if (user, password) == ("dj", "booth") else refuse)
        else:
            self.answer(200, {})

    def answer(self, status, headers):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
print("PORT", server.server_address[1], flush=True)
server.serve_forever()
