#!/usr/bin/env python3
"""hb46pp_server.py - an HB46PP provisioning server for the lab.

HB46PP ("IPv6マイグレーション技術の国内標準プロビジョニング方式", v6pc,
spec.md sections 3.3 and 3.4): the CPE finds the server's URL in the TXT
record of 4over6.info (lab.sh dns add txt ...), then sends
  GET <path>?vendorid=..&product=..&version=..&capability=..[&token=..][&user=..&pass=..]
over IPv6 and gets JSON whose "order" names the IPv4 method (dslite,
map_e, ipip, ...).  This server answers with the JSON file given by
--answer (re-read at every request, so a test can switch it), over HTTP
and, with --tls, over HTTPS with the lab CA's certificate.  Standard
library only; shares nothing with ipoed: it is the check of the router's
client, so every request is recorded and every breach of spec 3.3 counted
by name under "violations" (the server still answers, as the spec tells
servers to ignore what they do not know):
  vendorid-missing, vendorid-bad   6 hex digits (OUI), optionally "-" and up to 24 of [0-9A-Za-z_]
  product-missing, product-bad     [0-9A-Za-z_-]{1,32}
  version-missing, version-bad     [0-9_]{1,32}
  capability-missing, capability-bad   a comma list of 464xlat dslite ipip lw4o6 map_e map_t hubspoke mesh
  token-bad                        64 lower-case hex digits
  user-without-pass, pass-without-user, user-bad, pass-bad   ([0-9A-Za-z_-]{1,32})
  duplicate-parameter              a parameter given twice
  credentials-over-http            user/pass sent without TLS
  no-sni                           HTTPS without the server_name extension (a SHOULD)
  not-get                          another method than GET (answered 405)

Answers: 200 with the file's JSON; 404 for another path; 403 when
--allow-source is given and the source is not inside one of its prefixes
(spec: "unknown source").  With --user/--pass the server authenticates:
without credentials it answers {"auth": "req", "order": []} (plus the
file's names and ttl), with wrong ones "auth": "bad" and order [], with
the right ones the file's JSON plus "auth": "ok".  --token T adds
"token": T to every answer and records whether the request carried it.
Requests to "/redirected" + path are served like path (the target of the
redirect fault).

Faults on demand (--fault-file, JSON {"kind", "arg", "count"}, re-read when
it changes; count = how many requests it applies to, -1 = all):
  status CODE       that status with a short text body
  redirect [URL]    307 with Location URL (default: the same server,
                    "/redirected" + path, same query)
  malformed KIND    200 with a broken body: truncated (half the JSON),
                    not-json (HTML), wrong-types (order is a string, ttl a
                    string), empty (no body), huge (valid JSON of 2 MiB),
                    short-body (Content-Length larger than the body, then
                    the connection closes)
  close             close the connection without an answer
  delay S           wait S seconds, then answer normally

Outputs: --stats FILE (JSON, rewritten after every request and TLS failure:
counters, violations, the last --keep records, TLS handshake failures),
--records FILE (one JSON line per request, appended), --log FILE.
"""

import argparse
import http.server
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse

from tunlib import write_json_atomic

VIOLATIONS = (
    "vendorid-missing", "vendorid-bad", "product-missing", "product-bad", "version-missing",
    "version-bad", "capability-missing", "capability-bad", "token-bad", "user-without-pass",
    "pass-without-user", "user-bad", "pass-bad", "duplicate-parameter", "credentials-over-http",
    "no-sni", "not-get",
)
CAPABILITIES = {"464xlat", "dslite", "ipip", "lw4o6", "map_e", "map_t", "hubspoke", "mesh"}
VENDORID = re.compile(r"[0-9A-Fa-f]{6}(-[0-9A-Za-z_]{0,24})?")
NAME32 = re.compile(r"[0-9A-Za-z_-]{1,32}")
VERSION = re.compile(r"[0-9_]{1,32}")
TOKEN = re.compile(r"[0-9a-f]{64}")
FAULTS = ("none", "status", "redirect", "malformed", "close", "delay")
MALFORMED = ("truncated", "not-json", "wrong-types", "empty", "huge", "short-body")


def check_query(params, scheme, sni):
    """The spec 3.3 violations of one request's query."""
    out = []
    for k, v in params.items():
        if len(v) > 1:
            out.append("duplicate-parameter")
            break
    one = {k: v[0] for k, v in params.items()}
    for name, rx in (("vendorid", VENDORID), ("product", NAME32), ("version", VERSION)):
        if name not in one:
            out.append(f"{name}-missing")
        elif not rx.fullmatch(one[name]):
            out.append(f"{name}-bad")
    if "capability" not in one:
        out.append("capability-missing")
    else:
        caps = one["capability"].split(",")
        if not all(c in CAPABILITIES for c in caps) or len(set(caps)) != len(caps):
            out.append("capability-bad")
    if "token" in one and not TOKEN.fullmatch(one["token"]):
        out.append("token-bad")
    if "user" in one and "pass" not in one:
        out.append("user-without-pass")
    if "pass" in one and "user" not in one:
        out.append("pass-without-user")
    for name in ("user", "pass"):
        if name in one and not NAME32.fullmatch(one[name]):
            out.append(f"{name}-bad")
    if scheme == "http" and ("user" in one or "pass" in one):
        out.append("credentials-over-http")
    if scheme == "https" and not sni:
        out.append("no-sni")
    return out


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.requests = 0
        self.by_status = {}
        self.violations = {v: 0 for v in VIOLATIONS}
        self.records = []
        self.tls_failures = []
        self.tls_failure_count = 0
        self.started = time.time()
        self.fault = {"kind": "none", "arg": None, "count": 0}
        self.fault_stamp = None
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        self.write()

    def current_fault(self):
        """The fault for this request (consumes one of its count)."""
        with self.lock:
            f = self.args.fault_file
            try:
                st = os.stat(f) if f else None
            except FileNotFoundError:
                st = None
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size) if st else None
            if stamp != self.fault_stamp:
                self.fault_stamp = stamp
                self.fault = {"kind": "none", "arg": None, "count": 0}
                if st:
                    try:
                        with open(f) as fh:
                            d = json.load(fh)
                        if d.get("kind") in FAULTS:
                            self.fault = {"kind": d["kind"], "arg": d.get("arg"),
                                          "count": int(d.get("count", -1))}
                    except (OSError, ValueError):
                        pass
            fault = dict(self.fault)
            if fault["kind"] == "none" or fault["count"] == 0:
                return {"kind": "none", "arg": None}
            if self.fault["count"] > 0:
                self.fault["count"] -= 1
            return fault

    def add(self, rec):
        with self.lock:
            self.requests += 1
            rec["seq"] = self.requests
            key = str(rec["status"])
            self.by_status[key] = self.by_status.get(key, 0) + 1
            for v in rec["violations"]:
                self.violations[v] += 1
            self.records.append(rec)
            del self.records[:-self.args.keep]
            if self.args.records:
                with open(self.args.records, "a") as f:
                    f.write(json.dumps(rec, sort_keys=True) + "\n")
            if self.logf:
                self.logf.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {rec['scheme']} {rec['source']} "
                                f"{rec['method']} {rec['path']}?{rec['query']} -> {rec['status']} "
                                f"fault={rec['fault']} violations={rec['violations']}\n")
            self.write()

    def tls_failure(self, source, reason):
        with self.lock:
            self.tls_failure_count += 1
            self.tls_failures.append({"time": time.time(), "source": source, "reason": reason})
            del self.tls_failures[:-20]
            if self.logf:
                self.logf.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} tls handshake from {source} "
                                f"failed: {reason}\n")
            self.write()

    def write(self):
        if not self.args.stats:
            return
        a = self.args
        d = {"pid": os.getpid(), "listen": a.listen, "http_port": a.http_port,
             "https_port": a.https_port if a.tls else None, "path": a.path, "answer": a.answer,
             "auth_required": a.user is not None, "token": a.token,
             "started": self.started, "updated": time.time(), "requests": self.requests,
             "by_status": dict(self.by_status), "violations": dict(self.violations),
             "violations_total": sum(self.violations.values()), "fault": dict(self.fault),
             "tls_failure_count": self.tls_failure_count, "tls_failures": list(self.tls_failures),
             "records": list(self.records)}
        write_json_atomic(a.stats, d)


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True
    tls_ctx = None

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)   # IPv6 is a MUST
        super().server_bind()

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's own thread: a client
        # that stalls in it must not stop the accept loop.
        if self.tls_ctx is not None:
            request.settimeout(10)
            try:
                request = self.tls_ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                self.state.tls_failure(client_address[0], str(e))
                return
        super().finish_request(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lab-hb46pp/1"
    sys_version = ""
    timeout = 10

    def log_message(self, fmt, *args):
        pass

    def record(self, url, params):
        tls = isinstance(self.connection, ssl.SSLSocket)
        sni = getattr(self.connection, "lab_sni", None) if tls else None
        return {"time": time.time(), "scheme": "https" if tls else "http",
                "source": self.client_address[0].split("%")[0], "port": self.client_address[1],
                "method": self.command, "path": url.path, "query": url.query,
                "params": {k: v[0] if len(v) == 1 else v for k, v in params.items()},
                "host": self.headers.get("Host"), "user_agent": self.headers.get("User-Agent"),
                "sni": sni, "tls_version": self.connection.version() if tls else None,
                "violations": [], "fault": "none"}

    def send(self, status, body, rec, ctype="application/json", headers=(), length=None):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        if self.server.args.chunked and length is None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if data:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(data) if length is None else length))
            self.end_headers()
            self.wfile.write(data)
        if length is not None:
            self.close_connection = True
        rec["status"] = status
        rec["body_bytes"] = len(data)
        self.server.state.add(rec)

    def answer_doc(self, rec, params):
        """The JSON reply (bytes) for an accepted request."""
        a = self.server.args
        with open(a.answer, "rb") as f:
            raw = f.read()
        one = {k: v[0] for k, v in params.items()}
        if a.token is not None:
            rec["token_match"] = one.get("token") == a.token
        if a.user is None and a.token is None:
            return raw            # verbatim: tests may serve unknown keys
        doc = json.loads(raw)
        if a.user is not None:
            if "user" not in one and "pass" not in one:
                rec["auth"] = "req"
            elif one.get("user") == a.user and one.get("pass") == a.password:
                rec["auth"] = "ok"
            else:
                rec["auth"] = "bad"
            if rec["auth"] != "ok":
                doc = {k: doc[k] for k in ("enabler_name", "service_name", "isp_name", "ttl") if k in doc}
                doc["order"] = []
            doc["auth"] = rec["auth"]
        if a.token is not None:
            doc["token"] = a.token
        return json.dumps(doc).encode()

    def malformed(self, kind, rec):
        a = self.server.args
        with open(a.answer, "rb") as f:
            raw = f.read()
        if kind == "truncated":
            return self.send(200, raw[:max(1, len(raw) // 2)], rec)
        if kind == "not-json":
            return self.send(200, "<html><body>maintenance</body></html>\n", rec)
        if kind == "wrong-types":
            return self.send(200, json.dumps({"ttl": "soon", "order": "dslite", "dslite": ["aftr"]}), rec)
        if kind == "empty":
            return self.send(200, b"", rec)
        if kind == "huge":
            doc = {"order": ["dslite"], "dslite": {"aftr": "2001:db8:aaaa::1"}, "pad": "x" * (2 << 20)}
            return self.send(200, json.dumps(doc), rec)
        # short-body: promise more than comes, then close
        return self.send(200, raw[:max(1, len(raw) // 2)], rec, length=len(raw))

    def do_GET(self):
        a = self.server.args
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        rec = self.record(url, params)
        redirected = url.path == "/redirected" + a.path
        rec["redirected"] = redirected
        if url.path != a.path and not redirected:
            return self.send(404, "not found\n", rec, "text/plain")
        rec["violations"] = check_query(params, rec["scheme"], rec["sni"])
        src = ipaddress.IPv6Address(rec["source"])
        if a.allow_source and not any(src in n for n in a.allow_source):
            return self.send(403, "forbidden\n", rec, "text/plain")
        fault = st.current_fault() if not redirected else {"kind": "none", "arg": None}
        rec["fault"] = fault["kind"] if fault["arg"] is None else f"{fault['kind']} {fault['arg']}"
        kind, arg = fault["kind"], fault["arg"]
        if kind == "delay":
            time.sleep(float(arg or 1))
        elif kind == "status":
            code = int(arg or 503)
            return self.send(code, f"error {code}\n", rec, "text/plain")
        elif kind == "redirect":
            host = self.headers.get("Host") or f"[{a.listen}]"
            loc = arg or f"{rec['scheme']}://{host}/redirected{a.path}" + (f"?{url.query}" if url.query else "")
            rec["location"] = loc
            return self.send(307, "", rec, "text/plain", [("Location", loc)])
        elif kind == "malformed":
            return self.malformed(arg or "truncated", rec)
        elif kind == "close":
            rec["status"] = None
            rec["body_bytes"] = 0
            st.add(rec)
            self.close_connection = True
            return None
        try:
            body = self.answer_doc(rec, params)
        except (OSError, ValueError) as e:
            rec["error"] = f"answer file: {e}"
            return self.send(500, "answer file unusable\n", rec, "text/plain")
        return self.send(200, body, rec)

    def other(self):
        url = urllib.parse.urlsplit(self.path)
        rec = self.record(url, {})
        rec["violations"] = ["not-get"]
        self.send(405, "method not allowed\n", rec, "text/plain", [("Allow", "GET")])

    do_POST = do_PUT = do_DELETE = other


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", default="2001:db8:77:ee::46")
    p.add_argument("--http-port", type=int, default=80)
    p.add_argument("--https-port", type=int, default=443)
    p.add_argument("--tls", action="store_true", help="also serve HTTPS (needs --cert and --key)")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--answer", required=True, help="JSON file served as the answer")
    p.add_argument("--path", default="/config")
    p.add_argument("--user")
    p.add_argument("--pass", dest="password")
    p.add_argument("--token", help="64 hex digits handed out in every answer")
    p.add_argument("--allow-source", action="append", type=ipaddress.IPv6Network, metavar="PREFIX")
    p.add_argument("--fault-file")
    p.add_argument("--chunked", action="store_true")
    p.add_argument("--keep", type=int, default=200)
    p.add_argument("--stats")
    p.add_argument("--records")
    p.add_argument("--log")
    args = p.parse_args()
    args.listen = str(ipaddress.IPv6Address(args.listen))
    if (args.user is None) != (args.password is None):
        p.error("--user and --pass go together")
    if args.token is not None and not TOKEN.fullmatch(args.token):
        p.error("--token must be 64 lower-case hex digits")
    with open(args.answer, "rb"):
        pass
    state = State(args)
    servers = [Server((args.listen, args.http_port), Handler)]
    if args.tls:
        if not (args.cert and args.key):
            p.error("--tls needs --cert and --key")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.cert, args.key)

        def sni_seen(sock, name, _ctx):
            sock.lab_sni = name

        ctx.sni_callback = sni_seen
        s = Server((args.listen, args.https_port), Handler)
        s.tls_ctx = ctx
        servers.append(s)
    for s in servers:
        s.args, s.state = args, state
        threading.Thread(target=s.serve_forever, daemon=True).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(1.0):
        pass
    state.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
