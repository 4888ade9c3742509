#!/usr/bin/env python3
"""update_server.py - the provider's fixed-IPv4 update URL, for the lab.

A fixed-IPv4 IPIP service learns the customer's current tunnel-local IPv6
address from an HTTP GET the router sends *from that address* (the notes in
jp-ipoe-methods.md, section 4).  This server plays that URL on IPv6 only,
records every request (time, source address and port, method, path, query,
user/password from the query or HTTP Basic, User-Agent, what it answered)
and, on success, registers the request's source address with the lab's
tunnel end (ipip.py: its registration file, then "reload" on its control
socket; the answer goes out only after ipip.py took the address, or when
none runs).  Standard library only; shares nothing with ipoed.

Styles (--style), after the providers' observed behaviour:
  v6plus   GET /update?user=U&pass=P.  Right credentials: 200 "OK".  No
           user/pass parameters at all: 200 "OK" too, but nothing is
           registered (as the real one, which makes wrong parameter names
           fail silently; recorded as "anonymous").  Wrong credentials: the
           notes do not say; the lab answers 200 "NG", so a router that
           judges by the status code alone is caught.
  transix  GET /request?username=U&password=P.  200 "OK", or 400 "NG" for
           missing or wrong credentials (never 401).
--basic: the credentials must come as HTTP Basic instead (the query's are
ignored): without or with wrong ones the answer is 401 with
WWW-Authenticate: Basic realm="update".

Fault injection: --fail-first N answers the first N requests with
--fail-status (default 503) and registers nothing; --delay S waits S seconds
before answering.  Responses are HTTP/1.1 with Content-Length and
keep-alive (--chunked: chunked transfer encoding instead).

Outputs: --stats FILE (JSON, rewritten after every request: counters by
result, the current registration, the last --keep records), --records FILE
(every record, one JSON line each, appended), --log FILE (one line per
request).  SIGTERM/SIGINT exit cleanly.
"""

import argparse
import base64
import http.server
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

from ipip import register
from tunlib import write_json_atomic

STYLES = {
    # path, user parameter, password parameter
    "v6plus": ("/update", "user", "pass"),
    "transix": ("/request", "username", "password"),
}
RESULTS = ("ok", "anonymous", "bad-credentials", "no-credentials", "injected-failure", "not-found",
           "bad-method")


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # IPv6 only: the service is reached over the NGN's IPv6
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.requests = 0
        self.results = {r: 0 for r in RESULTS}
        self.records = []
        self.started = time.time()
        self.registered = None
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        self.write()

    def add(self, rec):
        with self.lock:
            self.requests += 1
            rec["seq"] = self.requests
            self.results[rec["result"]] += 1
            if rec.get("registered"):
                self.registered = {"local": rec["source"], "time": rec["time"], "seq": rec["seq"]}
            self.records.append(rec)
            del self.records[:-self.args.keep]
            if self.args.records:
                with open(self.args.records, "a") as f:
                    f.write(json.dumps(rec, sort_keys=True) + "\n")
            if self.logf:
                self.logf.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {rec['source']} {rec['method']} "
                                f"{rec['path']} -> {rec['status']} {rec['body']!r} ({rec['result']})\n")
            self.write()

    def write(self):
        if not self.args.stats:
            return
        a = self.args
        d = {"pid": os.getpid(), "listen": a.listen, "port": a.port, "style": a.style,
             "path": STYLES[a.style][0], "basic": a.basic, "user": a.user,
             "started": self.started, "updated": time.time(), "requests": self.requests,
             "results": dict(self.results), "registered": self.registered, "records": self.records}
        write_json_atomic(a.stats, d)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lab-update/1"
    sys_version = ""
    timeout = 10

    def log_message(self, fmt, *args):   # the State log replaces stderr noise
        pass

    def reply(self, status, body, rec, headers=()):
        a = self.server.args
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        for k, v in headers:
            self.send_header(k, v)
        if a.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if data:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        rec["status"] = status
        rec["body"] = body
        self.server.state.add(rec)

    def do_GET(self):
        a = self.server.args
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        path, uparam, pparam = STYLES[a.style]
        rec = {"time": time.time(), "source": self.client_address[0].split("%")[0],
               "port": self.client_address[1], "method": self.command, "path": url.path,
               "query": url.query, "params": {k: v[0] if len(v) == 1 else v for k, v in params.items()},
               "user": (params.get(uparam) or [None])[0], "pass": (params.get(pparam) or [None])[0],
               "basic_user": None, "basic_pass": None,
               "user_agent": self.headers.get("User-Agent"), "host": self.headers.get("Host"),
               "registered": False, "tunnel_end": None}
        auth = self.headers.get("Authorization")
        if auth and auth.startswith("Basic "):
            try:
                u, _, pw = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
                rec["basic_user"], rec["basic_pass"] = u, pw
            except ValueError:
                rec["basic_user"] = "(undecodable)"
        if a.delay:
            time.sleep(a.delay)
        if url.path != path:
            rec["result"] = "not-found"
            return self.reply(404, "Not Found\n", rec)
        with st.lock:
            failing = st.requests - st.results["not-found"] - st.results["bad-method"] < a.fail_first
        if failing:
            rec["result"] = "injected-failure"
            return self.reply(a.fail_status, "Service Unavailable\n", rec)
        if a.basic:
            if rec["basic_user"] != a.user or rec["basic_pass"] != a.password:
                rec["result"] = "no-credentials" if auth is None else "bad-credentials"
                return self.reply(401, "Unauthorized\n", rec, [("WWW-Authenticate", 'Basic realm="update"')])
        elif rec["user"] is None and rec["pass"] is None:
            rec["result"] = "no-credentials"
            if a.style == "v6plus":   # the real one says OK and does nothing
                rec["result"] = "anonymous"
                return self.reply(200, "OK", rec)
            return self.reply(400, "NG", rec)
        elif rec["user"] != a.user or rec["pass"] != a.password:
            rec["result"] = "bad-credentials"
            return self.reply(200 if a.style == "v6plus" else 400, "NG", rec)
        rec["result"] = "ok"
        rec["registered"] = True
        if a.registration:
            reply = register(a.registration, a.control, rec["source"], f"update-server seq {st.requests + 1}")
            rec["tunnel_end"] = reply if reply is not None else "not running"
        return self.reply(200, "OK", rec)

    def other(self):
        rec = {"time": time.time(), "source": self.client_address[0].split("%")[0],
               "port": self.client_address[1], "method": self.command, "path": self.path,
               "query": "", "params": {}, "user": None, "pass": None, "basic_user": None,
               "basic_pass": None, "user_agent": self.headers.get("User-Agent"),
               "host": self.headers.get("Host"), "registered": False, "tunnel_end": None,
               "result": "bad-method"}
        self.reply(405, "Method Not Allowed\n", rec, [("Allow", "GET")])

    do_POST = do_PUT = do_DELETE = other


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", default="2001:db8:77:ee::80")
    p.add_argument("--port", type=int, default=8082)
    p.add_argument("--style", choices=sorted(STYLES), default="v6plus")
    p.add_argument("--user", default="lab")
    p.add_argument("--pass", dest="password", default="secret")
    p.add_argument("--basic", action="store_true", help="credentials by HTTP Basic instead of the query")
    p.add_argument("--fail-first", type=int, default=0, metavar="N")
    p.add_argument("--fail-status", type=int, default=503)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--chunked", action="store_true")
    p.add_argument("--registration", help="ipip.py's registration file")
    p.add_argument("--control", help="ipip.py's control socket")
    p.add_argument("--keep", type=int, default=200, help="records kept in the stats file")
    p.add_argument("--stats")
    p.add_argument("--records")
    p.add_argument("--log")
    args = p.parse_args()
    args.listen = str(ipaddress.IPv6Address(args.listen))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    srv = Server((args.listen, args.port), Handler)
    srv.args = args
    srv.state = State(args)
    try:
        srv.serve_forever()
    finally:
        srv.state.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
