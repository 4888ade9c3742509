#!/usr/bin/env python3
"""br.py - MAP-E Border Relay emulator for the ipoe-router network-namespace lab.

This is the *independent* check of the router's MAP-E CE (RFC 7597, IPv4 in
IPv6, next header 4).  It shares no code with ipoed, computes the Basic
Mapping Rule arithmetic itself, and uses only the Python standard library.
It terminates the softwire in userspace the same way aftr.py does (see
there): an AF_INET6/SOCK_RAW socket with protocol 4 bound to the BR address,
and a TUN device that hands the inner IPv4 to the kernel of its namespace,
which routes it to the lab's "internet" without NAT (the shared IPv4
addresses of the rule are routed back into the TUN).

One Basic Mapping Rule: rule IPv6 prefix, rule IPv4 prefix, EA-bits length,
PSID offset (a).  PSID length k = EA length - (32 - IPv4 prefix length); a
CE's End-user prefix is the rule IPv6 prefix followed by its EA bits (IPv4
suffix | PSID); its address is subnet 0 of that prefix with the Interface-ID
  legacy  (draft-ietf-softwire-map-03, the JP default): 0x00|IPv4|PSID16|0x00
  rfc7597 (RFC 7597 section 6):                          0x0000|IPv4|PSID16
and its ports are (A << (16-a)) | (PSID << (16-a-k)) | j with A != 0 when
a > 0 (RFC 7597 5.1).

Decapsulation (CE -> BR -> tun): every packet is validated; a packet that
breaks the rule is dropped and counted by name under "violations" (see
VIOLATIONS): the inner source must be inside the rule IPv4 prefix, its source
port (ICMP query: identifier, RFC 7597 8.2; ICMP error: the quoted
packet's destination port) must not be in the excluded A = 0 range and must
belong to the PSID of the outer IPv6 source, and the outer source must be
exactly the CE address computed from the inner source address and port.
Non-first fragments carry no port: they are checked against the CE learned
from their first fragment (a bounded table; fragments that come before
their first fragment wait in a bounded queue for 2 s).  Counted but still
forwarded (the packet is harmless to the BR, but the CE broke a rule of the
JP profile): an encapsulation-limit option (RFC 2473) in a Destination
Options header, an inner packet longer than the tunnel MTU (1460), a
traffic class that differs from the inner TOS.
Encapsulation (tun -> BR -> CE): stateless, as a real BR: the CE address is
computed from the destination IPv4 and port (ICMP query: identifier; ICMP
error: the quoted packet's source port); non-first fragments use the CE
learned from their first fragment.  What cannot be mapped is dropped and
counted under "errors" (not the CE's fault).

Also counted: packets/bytes each way, distinct flows (inner source IPv4,
protocol, port) seen from CEs, and per CE the distinct source ports used per
protocol (the lists are in the stats file).

Outputs: --stats FILE is rewritten atomically every second (when something
changed), on SIGUSR1 and at exit (JSON); --log FILE gets one line per new CE
and per violation/error (rate limited per name).  SIGTERM/SIGINT exit
cleanly.

Offline helpers (no sockets, no root): --print-prefixes prints "RULE6
RULE4" (lab.sh routes them); --explain X prints JSON for X = an IPv6
address or prefix inside the rule (its IPv4, PSID, CE address and port runs)
or IPV4:PORT (its PSID and CE address).
"""

import argparse
import collections
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

from tunlib import (IPPROTO_ICMP, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, IPV6_RECVDSTOPTS,
                    Shutdown, Tallies, force_bufs, has_encap_limit, on_signal, open_tun,
                    parse_cmsgs, validate_ipv4, write_json_atomic)

PROTO_NAMES = {IPPROTO_ICMP: "icmp", IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp"}
ICMP_QUERIES = (0, 8, 13, 14, 15, 16, 17, 18)   # echo, timestamp, info, mask: identifier at 4
ICMP_ERRORS = (3, 4, 5, 11, 12)                 # quote the offending packet at 8

# Named presets of the lab (documentation prefixes only).  The IPv4 prefix is
# 192.0.2.0/24 because the lab's inet server already sits in 198.51.100.0/24.
PRESETS = {
    # v6plus-like: PSID length 8, offset 4 -> 15 runs of 16 = 240 ports
    "v6plus-lab": ("2001:db8:4d00::/40", "192.0.2.0/24", 16, 4),
    # OCN-like: PSID length 6, offset 6 -> 63 runs of 16 = 1008 ports
    "ocn-lab": ("2001:db8:4e00::/42", "192.0.2.0/24", 14, 6),
}

# Packets from CEs that break the rule (tests require all of them to stay 0).
VIOLATIONS = (
    "truncated",            # recvmsg() reported MSG_TRUNC
    "short-packet",         # fewer than 20 bytes, or fewer than IHL*4
    "bad-destination",      # outer IPv6 destination is not the BR address (--bind-any)
    "bad-version",          # inner version != 4
    "bad-ihl",              # inner IHL < 5
    "bad-total-length",     # inner total length != received payload length
    "bad-ip-checksum",
    "ttl-zero",
    "short-l4",             # too short for the L4 header / port
    "bad-tcp-checksum",
    "bad-udp-checksum",
    "bad-icmp-checksum",
    "src-outside-rule",     # inner source not inside the rule IPv4 prefix
    "no-port",              # no port to check (other protocol, unusable ICMP)
    "port-excluded",        # source port in the A = 0 range (0..2^(16-a)-1), a > 0
    "port-outside-set",     # outer source is the CE of this IPv4, but the port has another PSID
    "ce-source-mismatch",   # outer source != CE address for inner source address and port
    "frag-no-first",        # non-first fragment whose first fragment never came (2 s)
    "encap-limit-option",   # Destination Options with a Tunnel Encapsulation Limit (forwarded)
    "inner-too-big",        # inner packet longer than the tunnel MTU (forwarded)
    "tclass-mismatch",      # outer traffic class != inner TOS (forwarded)
)
# Trouble on the BR's own side (not the CE's fault).
ERRORS = (
    "tun-write-error",
    "encap-not-ipv4",       # tun delivered something that is not IPv4
    "encap-outside-rule",   # destination not inside the rule IPv4 prefix
    "encap-no-port",        # nothing to take a port from
    "encap-port-excluded",  # destination port in the A = 0 range: no CE has it
    "encap-frag-no-first",  # non-first fragment whose first fragment never came (2 s)
    "encap-send-error",     # sendmsg() on the raw socket failed
)

FRAG_TTL = 2.0


class Rule:
    """RFC 7597 Basic Mapping Rule arithmetic, written from the RFC text."""

    def __init__(self, ipv6_prefix, ipv4_prefix, ea_len, psid_offset, iid="legacy"):
        self.p6 = ipaddress.IPv6Network(ipv6_prefix)
        self.p4 = ipaddress.IPv4Network(ipv4_prefix)
        self.ea_len = int(ea_len)
        self.a = int(psid_offset)
        self.iid = iid
        self.suffix_bits = 32 - self.p4.prefixlen
        self.k = self.ea_len - self.suffix_bits
        if self.k < 0:
            raise ValueError("EA bits shorter than the IPv4 suffix (prefix-only rules are not supported)")
        self.eup_len = self.p6.prefixlen + self.ea_len
        if self.eup_len > 64:
            raise ValueError(f"rule IPv6 prefix + EA bits = /{self.eup_len}, longer than /64")
        if self.a + self.k > 16:
            raise ValueError("PSID offset + PSID length > 16")
        if iid not in ("legacy", "rfc7597"):
            raise ValueError("iid must be legacy or rfc7597")
        self.m = 16 - self.a - self.k
        self.p6_int = int(self.p6.network_address)
        self.p4_int = int(self.p4.network_address)
        self.p4_mask = int(self.p4.netmask)

    def describe(self):
        runs = (1 << self.a) - 1 if self.a else 1
        return {"ipv6_prefix": str(self.p6), "ipv4_prefix": str(self.p4), "ea_length": self.ea_len,
                "psid_offset": self.a, "psid_length": self.k, "iid_format": self.iid,
                "end_user_prefix_length": self.eup_len, "runs": runs, "ports_per_run": 1 << self.m,
                "ports_per_ce": runs << self.m}

    def in_rule4(self, ip):
        return (ip & self.p4_mask) == self.p4_int

    def psid_of_port(self, port):
        return (port >> self.m) & ((1 << self.k) - 1)

    def port_excluded(self, port):
        return self.a > 0 and (port >> (16 - self.a)) == 0

    def ce_prefix(self, ip, psid):
        ea = ((ip & ((1 << self.suffix_bits) - 1)) << self.k) | psid
        return self.p6_int | (ea << (128 - self.eup_len)) if self.ea_len else self.p6_int

    def ce_addr(self, ip, psid):
        """CE IPv6 address (int): subnet 0 of the End-user prefix + Interface-ID."""
        if self.iid == "legacy":
            iid = (ip << 24) | (psid << 8)
        else:
            iid = (ip << 16) | psid
        return self.ce_prefix(ip, psid) | iid

    def parse_ce(self, addr):
        """(IPv4, PSID) whose End-user prefix holds IPv6 address addr (int), or None."""
        if (addr >> (128 - self.p6.prefixlen)) != (self.p6_int >> (128 - self.p6.prefixlen)):
            return None
        ea = (addr >> (128 - self.eup_len)) & ((1 << self.ea_len) - 1)
        return self.p4_int | (ea >> self.k), ea & ((1 << self.k) - 1)

    def runs(self, psid):
        first = 1 if self.a else 0
        out = []
        for big_a in range(first, 1 << self.a):
            lo = (big_a << (16 - self.a)) | (psid << self.m)
            out.append((lo, lo + (1 << self.m) - 1))
        return out


def parse_rule(spec, iid):
    if spec in PRESETS:
        return Rule(*PRESETS[spec], iid=iid)
    parts = spec.split(",")
    if len(parts) != 4:
        raise ValueError(f"rule '{spec}': a preset ({', '.join(PRESETS)}) or IPV6PREFIX,IPV4PREFIX,EA,OFFSET")
    return Rule(parts[0], parts[1], int(parts[2]), int(parts[3]), iid=iid)


def explain(rule, what):
    a6 = lambda n: str(ipaddress.IPv6Address(n))  # noqa: E731
    a4 = lambda n: str(ipaddress.IPv4Address(n))  # noqa: E731
    if ":" in what and "." not in what:
        addr = int(ipaddress.IPv6Network(what, strict=False).network_address)
        got = rule.parse_ce(addr)
        if got is None:
            return {"error": f"{what} is not inside {rule.p6}"}
        ip, psid = got
    else:
        ip_s, port = what.rsplit(":", 1)
        ip, port = int(ipaddress.IPv4Address(ip_s)), int(port)
        if not rule.in_rule4(ip):
            return {"error": f"{ip_s} is not inside {rule.p4}"}
        psid = rule.psid_of_port(port)
    pfx = ipaddress.IPv6Network((rule.ce_prefix(ip, psid), rule.eup_len))
    runs = rule.runs(psid)
    return {"ipv4": a4(ip), "psid": psid, "end_user_prefix": str(pfx), "ce": a6(rule.ce_addr(ip, psid)),
            "runs": [list(r) for r in runs], "ports": sum(h - lo + 1 for lo, h in runs), "rule": rule.describe()}


class FragTable:
    """Bounded map (src, dst, proto, id) -> value learned from first fragments,
    plus a bounded queue of later fragments that came before their first."""

    def __init__(self, cap, pending_cap):
        self.cap, self.pending_cap = cap, pending_cap
        self.known = collections.OrderedDict()     # key -> (value, expiry)
        self.pending = collections.OrderedDict()   # key -> [(deadline, item), ...]
        self.pending_n = 0
        self.evicted = 0

    def learn(self, key, value, now):
        self.known[key] = (value, now + FRAG_TTL * 15)   # IPv4 reassembly allows 15..30 s
        self.known.move_to_end(key)
        while len(self.known) > self.cap:
            self.known.popitem(last=False)
            self.evicted += 1
        items = self.pending.pop(key, [])
        self.pending_n -= len(items)
        return [it for _, it in items]

    def lookup(self, key, now):
        v = self.known.get(key)
        if v is None or v[1] < now:
            return None
        return v[0]

    def hold(self, key, item, now):
        """Queue item; returns the items pushed out (to be counted as lost)."""
        self.pending.setdefault(key, []).append((now + FRAG_TTL, item))
        self.pending_n += 1
        lost = []
        while self.pending_n > self.pending_cap:
            _, items = self.pending.popitem(last=False)
            self.pending_n -= len(items)
            lost.extend(it for _, it in items)
        return lost

    def expire(self, now):
        lost = []
        for key in [k for k, v in self.pending.items() if v[0][0] < now]:
            items = self.pending.pop(key)
            self.pending_n -= len(items)
            lost.extend(it for _, it in items)
        for key in [k for k, v in self.known.items() if v[1] < now]:
            del self.known[key]
        return lost


class Br(Tallies):
    def __init__(self, args, rule):
        self.args = args
        self.rule = rule
        self.br_addr = str(ipaddress.IPv6Address(args.br))
        self.br_packed = socket.inet_pton(socket.AF_INET6, self.br_addr)
        self.counters = {"decap_ok": 0, "decap_bytes": 0, "encap_ok": 0, "encap_bytes": 0,
                         "decap_fragments": 0, "encap_fragments": 0, "flows_overflow": 0,
                         "ces_evicted": 0}
        self.violations = {n: 0 for n in VIOLATIONS}
        self.errors = {n: 0 for n in ERRORS}
        self.flows = set()
        self.ces = collections.OrderedDict()   # CE IPv6 str -> record
        self.last = {"last_hop_limit": None, "last_tclass": None, "last_ce": None}
        self.up_frags = FragTable(args.max_frags, 256)
        self.down_frags = FragTable(args.max_frags, 256)
        self.dirty = True
        self.stats_wanted = False   # SIGUSR1: written by the loop, never inside the handler
        self.started = time.time()
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        self.err_logged = collections.Counter()

        self.tun = open_tun(args.tun, args.mtu)
        # A burst of replies (hundreds of flows answered at once) must wait
        # in the tun for this single-threaded reader, not be dropped: the
        # default queue is 500 packets.
        subprocess.run(["ip", "link", "set", "dev", args.tun, "txqueuelen", "10000"], check=True)
        subprocess.run(["ip", "-4", "route", "replace", str(rule.p4), "dev", args.tun], check=True)

        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPIP)
        self.sock.bind(("::" if args.bind_any else self.br_addr, 0))
        for opt in (socket.IPV6_RECVPKTINFO, socket.IPV6_RECVHOPLIMIT, socket.IPV6_RECVTCLASS,
                    IPV6_RECVDSTOPTS):
            self.sock.setsockopt(socket.IPPROTO_IPV6, opt, 1)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 64)
        force_bufs(self.sock)
        self.sock.setblocking(False)
        self.ancsize = 512
        self.log(f"start br={self.br_addr} tun={args.tun} mtu={args.mtu} tunnel_mtu={args.tunnel_mtu} "
                 f"rule={json.dumps(rule.describe())}")

    # ------------------------------------------------------------------ output
    def write_stats(self):
        if not self.args.stats:
            return
        ces = {}
        for ce, r in self.ces.items():
            ces[ce] = {"ipv4": r["ipv4"], "psid": r["psid"], "decap_packets": r["decap"],
                       "encap_packets": r["encap"],
                       "ports_used": {p: len(s) for p, s in r["ports"].items()},
                       "ports": {p: sorted(s) for p, s in r["ports"].items()}}
        d = {"pid": os.getpid(), "br": self.br_addr, "tun": self.args.tun, "tunnel_mtu": self.args.tunnel_mtu,
             "rule": self.rule.describe(), "started": self.started, "updated": time.time()}
        d.update(self.counters)
        d["violations"] = dict(self.violations)
        d["violations_total"] = sum(self.violations.values())
        d["errors"] = dict(self.errors)
        d["errors_total"] = sum(self.errors.values())
        d["flows"] = len(self.flows)
        d["ce_count"] = len(self.ces)
        d["ces"] = ces
        d.update(self.last)
        write_json_atomic(self.args.stats, d)
        self.dirty = False

    def ce_record(self, ce, ip, psid):
        r = self.ces.get(ce)
        if r is None:
            r = {"ipv4": socket.inet_ntop(socket.AF_INET, struct.pack("!I", ip)), "psid": psid,
                 "decap": 0, "encap": 0, "ports": {}}
            self.ces[ce] = r
            self.log(f"ce {ce} ipv4={r['ipv4']} psid={psid}")
            while len(self.ces) > self.args.max_ces:
                self.ces.popitem(last=False)
                self.counters["ces_evicted"] += 1
        self.ces.move_to_end(ce)
        return r

    # ------------------------------------------------------------------ ports
    @staticmethod
    def icmp_port(l4, outbound):
        """The port-like value of an ICMP message (RFC 7597 8.2), or None.
        outbound: sent by the CE (an error quotes a packet sent TO the CE,
        whose destination port is the CE's); else sent toward the CE."""
        if len(l4) < 8:
            return None
        if l4[0] in ICMP_QUERIES:
            return struct.unpack_from("!H", l4, 4)[0]
        if l4[0] not in ICMP_ERRORS or len(l4) < 8 + 20:
            return None
        q = l4[8:]
        qihl = (q[0] & 0x0F) * 4
        if q[0] >> 4 != 4 or qihl < 20 or len(q) < qihl + 8:
            return None
        if struct.unpack_from("!H", q, 6)[0] & 0x1FFF:   # quoted non-first fragment
            return None
        ql4 = q[qihl:]
        if q[9] in (IPPROTO_TCP, IPPROTO_UDP):
            return struct.unpack_from("!H", ql4, 2 if outbound else 0)[0]
        if q[9] == IPPROTO_ICMP and ql4[0] in ICMP_QUERIES:
            return struct.unpack_from("!H", ql4, 4)[0]
        return None

    def port_of(self, pkt, ihl, outbound):
        """Source port (outbound) / destination port (inbound) of a packet that
        carries its L4 header, or None."""
        proto, l4 = pkt[9], pkt[ihl:]
        if proto in (IPPROTO_TCP, IPPROTO_UDP):
            if len(l4) < 4:
                return None
            return struct.unpack_from("!H", l4, 0 if outbound else 2)[0]
        if proto == IPPROTO_ICMP:
            return self.icmp_port(l4, outbound)
        return None

    # ------------------------------------------------------------------ decap
    def decap_one(self):
        try:
            pkt, anc, flags, src = self.sock.recvmsg(65535, self.ancsize)
        except BlockingIOError:
            return False
        ce = src[0].split("%")[0]
        dst, hlim, tclass, dstopts = parse_cmsgs(anc)
        self.last["last_hop_limit"] = hlim
        self.last["last_tclass"] = tclass
        self.last["last_ce"] = ce
        self.dirty = True
        if flags & socket.MSG_TRUNC:
            self.violation("truncated", f"ce={ce}")
            return True
        if dst != self.br_packed:
            d = socket.inet_ntop(socket.AF_INET6, dst) if dst else "?"
            self.violation("bad-destination", f"ce={ce} dst={d}")
            return True
        err = validate_ipv4(pkt)
        if err:
            self.violation(err, f"ce={ce} len={len(pkt)} head={pkt[:28].hex()}")
            return True
        for opts in dstopts:
            if has_encap_limit(opts):
                self.violation("encap-limit-option", f"ce={ce} dstopts={opts.hex()}")
        if len(pkt) > self.args.tunnel_mtu:
            self.violation("inner-too-big", f"ce={ce} len={len(pkt)}")
        if tclass is not None and tclass != pkt[1]:
            self.violation("tclass-mismatch", f"ce={ce} tclass={tclass:#04x} tos={pkt[1]:#04x}")
        ce_int = int(ipaddress.IPv6Address(ce))
        now = time.monotonic()
        frag = struct.unpack_from("!H", pkt, 6)[0]
        if frag & 0x3FFF:
            self.counters["decap_fragments"] += 1
        key = (pkt[12:16], pkt[16:20], pkt[9], pkt[4:6])
        if frag & 0x1FFF:       # non-first fragment: no port here
            learned = self.up_frags.lookup(key, now)
            if learned is None:
                for item in self.up_frags.hold(key, (ce_int, pkt), now):
                    self.violation("frag-no-first", f"ce={item[0]:x} (queue full)")
                return True
            self.decap_later(learned, ce_int, pkt)
            return True
        verdict = self.check_source(ce_int, pkt)
        if verdict is None:
            return True
        if frag & 0x2000:       # first fragment: the rest follow its verdict
            for later_ce, later in self.up_frags.learn(key, verdict, now):
                self.decap_later(verdict, later_ce, later)
        self.forward(pkt, verdict)
        return True

    def check_source(self, ce_int, pkt):
        """Validate the inner source against the outer one; returns
        (ce_int, ipv4, psid, port) or None (counted)."""
        ce = str(ipaddress.IPv6Address(ce_int))
        rule = self.rule
        ip = struct.unpack_from("!I", pkt, 12)[0]
        if not rule.in_rule4(ip):
            self.violation("src-outside-rule", f"ce={ce} src={socket.inet_ntop(socket.AF_INET, pkt[12:16])}")
            return None
        ihl = (pkt[0] & 0x0F) * 4
        if rule.k == 0 and rule.a == 0:
            port, psid = None, 0
        else:
            port = self.port_of(pkt, ihl, outbound=True)
            if port is None:
                self.violation("no-port", f"ce={ce} proto={pkt[9]} head={pkt[ihl:ihl + 8].hex()}")
                return None
            if rule.port_excluded(port):
                self.violation("port-excluded", f"ce={ce} port={port}")
                return None
            psid = rule.psid_of_port(port)
        want = rule.ce_addr(ip, psid)
        if want != ce_int:
            owner = rule.parse_ce(ce_int)
            if owner is not None and owner[0] == ip and rule.ce_addr(ip, owner[1]) == ce_int:
                self.violation("port-outside-set", f"ce={ce} psid={owner[1]} port={port} (psid {psid})")
            else:
                self.violation("ce-source-mismatch",
                               f"ce={ce} src={socket.inet_ntop(socket.AF_INET, pkt[12:16])} port={port} "
                               f"want={ipaddress.IPv6Address(want)}")
            return None
        return (ce_int, ip, psid, port)

    def decap_later(self, verdict, ce_int, pkt):
        if ce_int != verdict[0]:
            self.violation("ce-source-mismatch",
                           f"non-first fragment from {ipaddress.IPv6Address(ce_int)}, "
                           f"first came from {ipaddress.IPv6Address(verdict[0])}")
            return
        self.forward(pkt, verdict)

    def forward(self, pkt, verdict):
        ce_int, ip, psid, port = verdict
        ce = str(ipaddress.IPv6Address(ce_int))
        r = self.ce_record(ce, ip, psid)
        r["decap"] += 1
        if port is not None and not (struct.unpack_from("!H", pkt, 6)[0] & 0x1FFF):
            proto = PROTO_NAMES.get(pkt[9], str(pkt[9]))
            r["ports"].setdefault(proto, set()).add(port)
            flow = (ip, pkt[9], port)
            if flow not in self.flows:
                if len(self.flows) < self.args.max_flows:
                    self.flows.add(flow)
                else:
                    self.counters["flows_overflow"] += 1
        try:
            os.write(self.tun, pkt)
        except OSError as e:
            self.error("tun-write-error", f"{e}")
            return
        self.counters["decap_ok"] += 1
        self.counters["decap_bytes"] += len(pkt)

    # ------------------------------------------------------------------ encap
    def encap_one(self):
        try:
            pkt = os.read(self.tun, 65535)
        except BlockingIOError:
            return False
        self.dirty = True
        if len(pkt) < 20 or pkt[0] >> 4 != 4 or not 20 <= (pkt[0] & 0x0F) * 4 <= len(pkt):
            self.error("encap-not-ipv4", f"len={len(pkt)}")
            return True
        rule = self.rule
        ip = struct.unpack_from("!I", pkt, 16)[0]
        desc = f"{socket.inet_ntop(socket.AF_INET, pkt[12:16])} -> {socket.inet_ntop(socket.AF_INET, pkt[16:20])} proto={pkt[9]}"
        if not rule.in_rule4(ip):
            self.error("encap-outside-rule", desc)
            return True
        now = time.monotonic()
        frag = struct.unpack_from("!H", pkt, 6)[0]
        if frag & 0x3FFF:
            self.counters["encap_fragments"] += 1
        key = (pkt[12:16], pkt[16:20], pkt[9], pkt[4:6])
        if frag & 0x1FFF:
            ce_int = self.down_frags.lookup(key, now)
            if ce_int is None:
                for _ in self.down_frags.hold(key, pkt, now):
                    self.error("encap-frag-no-first", desc + " (queue full)")
                return True
            self.send(pkt, ce_int, ip, None)
            return True
        if rule.k == 0 and rule.a == 0:
            psid = 0
        else:
            port = self.port_of(pkt, (pkt[0] & 0x0F) * 4, outbound=False)
            if port is None:
                self.error("encap-no-port", desc)
                return True
            if rule.port_excluded(port):
                self.error("encap-port-excluded", f"{desc} port={port}")
                return True
            psid = rule.psid_of_port(port)
        ce_int = rule.ce_addr(ip, psid)
        if frag & 0x2000:
            for later in self.down_frags.learn(key, ce_int, now):
                self.send(later, ce_int, ip, psid)
        self.send(pkt, ce_int, ip, psid)
        return True

    def send(self, pkt, ce_int, ip, psid):
        ce = str(ipaddress.IPv6Address(ce_int))
        anc = [(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, struct.pack("i", pkt[1]))]
        if self.args.bind_any:   # bound to ::, the kernel would pick another source
            anc.append((socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, self.br_packed + b"\0" * 4))
        try:
            self.sock.sendmsg([pkt], anc, 0, (ce, 0))
        except OSError as e:
            self.error("encap-send-error", f"ce={ce} len={len(pkt)} {e}")
            return
        if ce in self.ces:
            self.ces[ce]["encap"] += 1
        self.counters["encap_ok"] += 1
        self.counters["encap_bytes"] += len(pkt)

    # ------------------------------------------------------------------ loop
    def expire(self):
        now = time.monotonic()
        for ce_int, _pkt in self.up_frags.expire(now):
            self.violation("frag-no-first", f"ce={ipaddress.IPv6Address(ce_int)}")
        for pkt in self.down_frags.expire(now):
            self.error("encap-frag-no-first",
                       f"{socket.inet_ntop(socket.AF_INET, pkt[12:16])} -> "
                       f"{socket.inet_ntop(socket.AF_INET, pkt[16:20])}")

    def run(self):
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(self.tun, select.POLLIN)
        # SIGUSR1 wakes poll() through this pipe; the loop writes the stats
        # (a handler writing them could interleave with the loop's own write).
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        poller.register(wake_r, select.POLLIN)
        sock_fd = self.sock.fileno()
        self.write_stats()
        next_tick = time.monotonic() + 1.0
        try:
            while True:
                timeout = max(0.0, next_tick - time.monotonic())
                for fd, _ev in poller.poll(timeout * 1000):
                    if fd == wake_r:
                        while True:
                            try:
                                os.read(wake_r, 64)
                            except BlockingIOError:
                                break
                        continue
                    step = self.decap_one if fd == sock_fd else self.encap_one
                    for _ in range(256):
                        if not step():
                            break
                if self.stats_wanted:
                    self.stats_wanted = False
                    self.write_stats()
                if time.monotonic() >= next_tick:
                    self.expire()
                    if self.dirty:
                        self.write_stats()
                    next_tick = time.monotonic() + 1.0
        except Shutdown as e:
            self.log(f"exit on signal {e.args[0]}")
        finally:
            self.write_stats()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--br", default="2001:db8:77:bb::1", help="BR IPv6 address")
    p.add_argument("--rule", default="v6plus-lab",
                   help=f"a preset ({', '.join(PRESETS)}) or IPV6PREFIX,IPV4PREFIX,EA_LEN,PSID_OFFSET")
    p.add_argument("--iid", choices=("legacy", "rfc7597"), default="legacy",
                   help="CE Interface-ID format (default legacy, the JP one)")
    p.add_argument("--tun", default="brtun")
    p.add_argument("--mtu", type=int, default=1500, help="MTU of the tun (toward the CE)")
    p.add_argument("--tunnel-mtu", type=int, default=1460,
                   help="longest inner packet a CE may send (longer ones: inner-too-big)")
    p.add_argument("--bind-any", action="store_true",
                   help="bind to :: so packets to other local addresses count as bad-destination")
    p.add_argument("--max-ces", type=int, default=1024)
    p.add_argument("--max-flows", type=int, default=262144)
    p.add_argument("--max-frags", type=int, default=1024)
    p.add_argument("--stats", help="JSON stats file")
    p.add_argument("--log", help="log file (CEs, violations, errors)")
    p.add_argument("--print-prefixes", action="store_true", help="print 'RULE6 RULE4' and exit")
    p.add_argument("--explain", metavar="IPV6[/LEN]|IPV4:PORT", help="print the mapping as JSON and exit")
    args = p.parse_args()
    try:
        rule = parse_rule(args.rule, args.iid)
    except ValueError as e:
        p.error(str(e))
    if args.print_prefixes:
        print(rule.p6, rule.p4)
        return 0
    if args.explain:
        print(json.dumps(explain(rule, args.explain), indent=1))
        return 0
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        br = Br(args, rule)
    except Shutdown:
        return 0
    signal.signal(signal.SIGUSR1, lambda *_: setattr(br, "stats_wanted", True))
    br.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
