#!/usr/bin/env python3
"""brce.py - a scripted MAP-E CE that exercises br.py (lab self-test only;
tests/tests/lab_ipip_peers.rs also points it at ipip.py, as the customer end
of the fixed-IPv4 tunnel).

Runs in a namespace whose kernel owns the CE addresses (tests/tests/lab_br.rs
puts them on router wan0, without ipoed).  It crafts inner IPv4 packets by
hand and sends them in IPv6 (next header 4) to the BR from the source address
each step names (IPV6_PKTINFO), then listens on the same raw socket for what
the BR encapsulates back, and checks each step's outcome.  It knows nothing
about the mapping rule: the test gives every address and port (the expected
values are the test's own vectors).  Standard library only.

Input: one JSON argument {"br": ADDR, "server": IPV4, "wait": S (longest wait
for the replies, default 10), "steps": [...]}.
A step: {"name", "kind", "ce": outer source, "src": inner IPv4 source,
"port": source port / ICMP identifier, "expect": "reply" | "none",
"reply_to": CE address the reply must reach (default: ce), "to": outer
destination (default: the BR)} plus per kind:
  udp        UDP to server:7 (the echo); "size": inner length (default small),
             "frag": split into inner fragments of at most 1400 bytes,
             "dstopts": send RFC 2473's encapsulation-limit option,
             "ports": [..] one datagram from each port (a sweep)
             "frag_order": "reverse" sends the last fragment first,
             "later_from": ADDR sends the non-first fragments from ADDR
             "corrupt": "ip-checksum" | "total-length" | "short" breaks it
  udp-to     UDP to "dst":"dport" (another CE, through the BR): the
             "reply" is the datagram itself, arriving at "reply_to"
  udp-closed UDP to server:9: the reply is ICMP port unreachable
  tcp-syn    a SYN to server:80: the reply is a SYN-ACK; "mss": with that MSS option
  tcp-rst    a SYN to server:81 (closed): the reply is a RST; "ports": a sweep
  ping       ICMP echo request with identifier "port"
  icmp-error a port unreachable from the CE to the server, quoting a UDP
             datagram server:7 -> src:port (nothing comes back)
  orphan     a non-first UDP fragment without its first fragment
Output: JSON {"ok": bool, "steps": [{"name", "ok", "detail", "packets"}]};
exit status 1 when a step failed.
"""

import json
import os
import select
import socket
import struct
import sys
import time

IPV6_DSTOPTS = getattr(socket, "IPV6_DSTOPTS", 59)


def csum(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def a4(s):
    return socket.inet_aton(s)


def ipv4(src, dst, proto, payload, ident, frag=0, mf=False, tos=0):
    flags = (0x2000 if mf else 0) | (frag // 8)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), ident, flags, 64, proto, 0, a4(src), a4(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def l4_sum(src, dst, proto, seg):
    return csum(a4(src) + a4(dst) + struct.pack("!BBH", 0, proto, len(seg)) + seg)


def udp(src, dst, sport, dport, data):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    c = l4_sum(src, dst, 17, seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def tcp_syn(src, dst, sport, dport, seq, mss=None):
    opts = struct.pack("!BBH", 2, 4, mss) if mss is not None else b""
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (5 + len(opts) // 4) << 4, 0x02, 64240, 0, 0) + opts
    return seg[:16] + struct.pack("!H", l4_sum(src, dst, 6, seg)) + seg[18:]


def corrupt(pkt, how):
    """A deliberately broken copy of an IPv4 packet (step option "corrupt")."""
    if how == "ip-checksum":
        return pkt[:10] + bytes([pkt[10] ^ 0xFF, pkt[11]]) + pkt[12:]
    if how == "total-length":
        return pkt[:2] + struct.pack("!H", len(pkt) + 4) + pkt[4:]
    if how == "short":
        return pkt[:12]
    raise ValueError(f"unknown corruption {how}")


def icmp(typ, code, rest, body):
    m = struct.pack("!BBH", typ, code, 0) + rest + body
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


class Ce:
    def __init__(self, spec):
        self.spec = spec
        self.br = spec["br"]
        self.server = spec["server"]
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 4)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.ident = int.from_bytes(os.urandom(2), "big") | 1
        self.got = {}      # (inner dst IPv4, port) -> [(outer src, outer dst, inner packet)]
        self.frags = {}    # (src, dst, proto, id) -> {offset: (mf, data)}
        self.header = {}   # same key -> first fragment's IPv4 header

    def next_id(self):
        self.ident = (self.ident + 1) & 0xFFFF
        return self.ident

    def send(self, ce, pkt, dstopts=False):
        anc = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, socket.inet_pton(socket.AF_INET6, ce) + b"\0" * 4)]
        if dstopts:
            anc.append((socket.IPPROTO_IPV6, IPV6_DSTOPTS, bytes([0, 0, 4, 1, 4, 1, 1, 0])))
        self.sock.sendmsg([pkt], anc, 0, (self.to, 0))

    # ------------------------------------------------------------------ steps
    def run_step(self, st):
        kind, ce, src, port, srv = st["kind"], st["ce"], st["src"], st.get("port", 0), self.server
        self.to = st.get("to", self.br)
        n = 0
        if kind in ("udp", "udp-to"):
            dst, dport = (st["dst"], st["dport"]) if kind == "udp-to" else (srv, 7)
            for p in st.get("ports", [port]):
                data = self.payload(st, p)
                seg = udp(src, dst, p, dport, data)
                ident = self.next_id()
                if st.get("frag"):
                    frags = [(off, ipv4(src, dst, 17, seg[off:off + 1400], ident, off, off + 1400 < len(seg)))
                             for off in range(0, len(seg), 1400)]
                    if st.get("frag_order") == "reverse":
                        frags.reverse()
                    for off, f in frags:
                        # "later_from": the non-first fragments come from another address
                        self.send(st.get("later_from", ce) if off else ce, f)
                        n += 1
                else:
                    pkt = ipv4(src, dst, 17, seg, ident)
                    if st.get("corrupt"):
                        pkt = corrupt(pkt, st["corrupt"])
                    self.send(ce, pkt, st.get("dstopts", False))
                    n += 1
        elif kind == "udp-closed":
            self.send(ce, ipv4(src, srv, 17, udp(src, srv, port, 9, b"closed"), self.next_id()))
            n = 1
        elif kind in ("tcp-syn", "tcp-rst"):
            dport = 80 if kind == "tcp-syn" else 81
            for p in st.get("ports", [port]):
                syn = tcp_syn(src, srv, p, dport, 0x10203040, st.get("mss"))
                self.send(ce, ipv4(src, srv, 6, syn, self.next_id()))
                n += 1
        elif kind == "ping":
            body = icmp(8, 0, struct.pack("!HH", port, 1), b"brce-ping")
            self.send(ce, ipv4(src, srv, 1, body, self.next_id()))
            n = 1
        elif kind == "icmp-error":
            quoted = ipv4(srv, src, 17, udp(srv, src, 7, port, b"x" * 8), 4242)[:28]
            self.send(ce, ipv4(src, srv, 1, icmp(3, 3, b"\0" * 4, quoted), self.next_id()))
            n = 1
        elif kind == "orphan":
            self.send(ce, ipv4(src, srv, 17, b"o" * 64, self.next_id(), 1480))
            n = 1
        else:
            raise ValueError(f"unknown step kind {kind}")
        return n

    def payload(self, st, port):
        tag = f"{st['name']}:{port}:".encode()
        size = st.get("size")
        if size is None:
            return tag
        body = size - 28
        return (tag * (body // len(tag) + 1))[:body]

    # ------------------------------------------------------------------ receive
    def receive(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if not select.select([self.sock], [], [], left)[0]:
                return
            pkt, anc, _flags, src = self.sock.recvmsg(65535, 256)
            dst = None
            for level, typ, data in anc:
                if level == socket.IPPROTO_IPV6 and typ == socket.IPV6_PKTINFO:
                    dst = socket.inet_ntop(socket.AF_INET6, data[:16])
            pkt = self.reassemble(pkt)
            if pkt is None:
                continue
            key = self.key_of(pkt)
            if key:
                self.got.setdefault(key, []).append((src[0], dst, pkt))

    def reassemble(self, pkt):
        if len(pkt) < 20:
            return None
        fo = struct.unpack_from("!H", pkt, 6)[0]
        if not fo & 0x3FFF:
            return pkt
        ihl = (pkt[0] & 15) * 4
        key = (pkt[12:16], pkt[16:20], pkt[9], pkt[4:6])
        parts = self.frags.setdefault(key, {})
        parts[(fo & 0x1FFF) * 8] = (bool(fo & 0x2000), pkt[ihl:])
        if fo & 0x1FFF == 0:
            self.header[key] = pkt[:ihl]
        off, data = 0, b""
        while off in parts:
            mf, d = parts[off]
            data += d
            off += len(d)
            if not mf:
                h = self.header.get(key)
                if h is None:
                    return None
                del self.frags[key]
                h = bytearray(h[:20])
                struct.pack_into("!HH", h, 2, 20 + len(data), 0)
                return bytes(h) + data
        return None

    @staticmethod
    def key_of(pkt):
        ihl = (pkt[0] & 15) * 4
        dst, proto, l4 = socket.inet_ntoa(pkt[16:20]), pkt[9], pkt[ihl:]
        if proto in (6, 17) and len(l4) >= 4:
            return (dst, struct.unpack_from("!H", l4, 2)[0])
        if proto == 1 and len(l4) >= 8:
            if l4[0] in (0, 8):
                return (dst, struct.unpack_from("!H", l4, 4)[0])
            if l4[0] == 3 and len(l4) >= 8 + 28:
                q = l4[8:]
                return (dst, struct.unpack_from("!H", q, (q[0] & 15) * 4)[0])
        return None

    # ------------------------------------------------------------------ checks
    def check(self, st):
        kind, want_ce = st["kind"], st.get("reply_to", st["ce"])
        ports = st.get("ports", [st.get("port", 0)])
        problems = []
        for p in ports:
            replies = self.got.get(self.reply_key(st, p), [])
            if st["expect"] == "none":
                if replies:
                    problems.append(f"port {p}: {len(replies)} unexpected replies, first to {replies[0][1]}")
                continue
            if not replies:
                problems.append(f"port {p}: no reply")
                continue
            for osrc, odst, inner in replies:
                if odst != want_ce or osrc != self.br:
                    problems.append(f"port {p}: reply {osrc} -> {odst}, want {self.br} -> {want_ce}")
                    break
            inner = replies[0][2]
            ihl = (inner[0] & 15) * 4
            l4 = inner[ihl:]
            if kind in ("udp", "udp-to") and (inner[9] != 17 or l4[8:] != self.payload(st, p)):
                problems.append(f"port {p}: reply is not our echo ({len(l4)} bytes)")
            elif kind == "udp-closed" and (inner[9] != 1 or l4[:2] != b"\x03\x03"):
                problems.append(f"port {p}: reply is not a port unreachable: {l4[:8].hex()}")
            elif kind == "tcp-syn" and (inner[9] != 6 or l4[13] & 0x12 != 0x12):
                problems.append(f"port {p}: reply is not a SYN-ACK: {l4[:16].hex()}")
            elif kind == "tcp-rst" and (inner[9] != 6 or not l4[13] & 0x04):
                problems.append(f"port {p}: reply is not a RST: {l4[:16].hex()}")
            elif kind == "ping" and (inner[9] != 1 or l4[0] != 0 or l4[8:] != b"brce-ping"):
                problems.append(f"port {p}: reply is not our echo reply: {l4[:16].hex()}")
        return problems

    @staticmethod
    def reply_key(st, port):
        """Where the answer to st's packet from port shows up: (IPv4, port)."""
        if st["kind"] == "udp-to":     # CE to CE: the datagram itself, at the other CE
            return (st["dst"], st["dport"])
        return (st["src"], port)

    def run(self):
        steps = self.spec["steps"]
        sent = [self.run_step(st) for st in steps]
        # Until every expected reply came (at most "wait" s), then 0.5 s more
        # for anything that should not come.
        t_end = time.monotonic() + self.spec.get("wait", 10)
        want = [self.reply_key(st, p) for st in steps if st["expect"] == "reply"
                for p in st.get("ports", [st.get("port", 0)])]
        while time.monotonic() < t_end and not all(k in self.got for k in want):
            self.receive(min(t_end, time.monotonic() + 0.1))
        self.receive(time.monotonic() + 0.5)
        out, ok = [], True
        for st, n in zip(steps, sent):
            problems = self.check(st)
            ok &= not problems
            out.append({"name": st["name"], "ok": not problems, "detail": "; ".join(problems[:5]),
                        "packets": n})
        return {"ok": ok, "steps": out}


def main():
    res = Ce(json.loads(sys.argv[1])).run()
    print(json.dumps(res, indent=1))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
