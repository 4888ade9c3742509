#!/usr/bin/env python3
"""aftr.py - DS-Lite AFTR emulator for the ipoe-router network-namespace lab.

This is the *independent* check of the router's DS-Lite B4 encapsulation
(RFC 6333, IPv4-in-IPv6, next header 4).  It shares no code with ipoed and
uses only the Python 3.11 standard library.

The lab kernel has no ip6tnl/ipip modules, so the softwire is terminated in
userspace:

  * an AF_INET6/SOCK_RAW socket with protocol 4 (IPPROTO_IPIP) bound to the
    AFTR address.  Linux hands every IPv6 packet with next header 4 addressed
    to a local address to matching raw sockets even though no tunnel handler
    is registered, and - because a raw socket consumed it - does NOT send an
    ICMPv6 parameter problem (ip6_protocol_deliver_rcu()).  The kernel strips
    the outer IPv6 header, so recvmsg() returns the inner IPv4 packet; the
    outer source is the B4 address, the outer destination / hop limit /
    traffic class come in as IPV6_PKTINFO / IPV6_HOPLIMIT / IPV6_TCLASS
    ancillary data.
  * a TUN device (IFF_TUN|IFF_NO_PI) that exchanges the inner IPv4 packets
    with the kernel of the aftr namespace, which routes them and NATs them
    (nftables masquerade on out0, configured by lab.sh).

Decapsulation (B4 -> AFTR -> tun0):
    strict validation; every failure is counted by name (see ERRORS) and the
    packet is dropped.  Valid packets create/refresh the softwire binding
    inner-source-IPv4 -> B4 IPv6 address (bounded LRU) and are written to tun.
    A traffic class that differs from the inner TOS is counted as
    "tclass-mismatch" but the packet is still forwarded.
Encapsulation (tun0 -> AFTR -> B4):
    look up the binding by inner destination; sendmsg() on the raw socket with
    hop limit 64 and IPV6_TCLASS = inner TOS (the kernel prepends the IPv6
    header: next header 4, source = AFTR address); unknown destination ->
    "no-binding".  With --encap-limit N every packet also carries what a
    Linux ip6tnl AFTR sends by default (encaplimit 4): a Destination Options
    header with RFC 2473's Tunnel Encapsulation Limit option (type 4, value
    N) and a PadN (IPV6_DSTOPTS ancillary data; when the kernel fragments
    the packet, the header stays in front of the Fragment header).

Limitations (lab only): NAT is keyed on the inner IPv4 source only (two B4s
behind the same private address would collide); no fragment reassembly (L4
checksums of fragments are not checked); no ICMPv6 packet-too-big handling.

Outputs: --stats FILE is rewritten atomically every second and at exit (JSON);
--log FILE gets one line per new/changed binding and per error (rate limited
per error name).  SIGUSR1 rewrites the stats file immediately.  SIGTERM/SIGINT
exit cleanly (status 0).
"""

import argparse
import collections
import errno
import ipaddress
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

from tunlib import (IPPROTO_IPIP, IPV6_DSTOPTS, Shutdown, force_bufs, is_fragment, on_signal,
                    open_tun, parse_cmsgs, validate_ipv4, write_json_atomic)

# Every counter that is a failure.  All are always present in the stats file.
ERRORS = (
    # decapsulation (B4 -> AFTR)
    "truncated",          # recvmsg() reported MSG_TRUNC
    "short-packet",       # fewer than 20 bytes, or fewer than IHL*4
    "bad-destination",    # outer IPv6 destination is not the AFTR address
    "bad-version",        # inner version != 4
    "bad-ihl",            # inner IHL < 5
    "bad-total-length",   # inner total length != received payload length
    "bad-ip-checksum",    # inner IPv4 header checksum wrong
    "ttl-zero",           # inner TTL == 0
    "short-l4",           # unfragmented TCP/UDP/ICMP too short for its header
    "bad-tcp-checksum",
    "bad-udp-checksum",
    "bad-icmp-checksum",
    "tclass-mismatch",    # outer traffic class != inner TOS (packet still forwarded)
    "tun-write-error",
    # encapsulation (AFTR -> B4)
    "no-binding",         # no softwire binding for the inner destination
    "encap-not-ipv4",     # tun delivered something that is not IPv4
    "encap-send-error",   # sendmsg() on the raw socket failed
)


class Aftr:
    def __init__(self, args):
        self.args = args
        self.aftr_addr = str(ipaddress.IPv6Address(args.aftr))
        self.aftr_packed = socket.inet_pton(socket.AF_INET6, self.aftr_addr)
        self.bindings = collections.OrderedDict()  # inner IPv4 str -> B4 IPv6 str
        self.counters = {"decap_ok": 0, "encap_ok": 0, "decap_bytes": 0, "encap_bytes": 0,
                         "decap_fragments": 0, "bindings_evicted": 0, "encap_limit_sent": 0}
        # Destination Options: next header (the kernel fills it in), length
        # 0 (8 bytes), option 4 with its one-byte limit, PadN of 1.
        self.dstopts = None
        if args.encap_limit is not None:
            self.dstopts = bytes([0, 0, 4, 1, args.encap_limit, 1, 1, 0])
        self.errors = {name: 0 for name in ERRORS}
        self.last = {"last_hop_limit": None, "last_tclass": None, "last_inner_tos": None,
                     "last_b4": None}
        self.started = time.time()
        self.logf = open(args.log, "a", buffering=1) if args.log else None

        self.tun = open_tun(args.tun, args.mtu)
        for prefix in args.route or ["192.168.0.0/16"]:
            subprocess.run(["ip", "-4", "route", "replace", prefix, "dev", args.tun], check=True)

        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPIP)
        self.sock.bind(("::" if args.bind_any else self.aftr_addr, 0))
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 64)
        force_bufs(self.sock)
        self.sock.setblocking(False)
        self.ancsize = (socket.CMSG_SPACE(20) + socket.CMSG_SPACE(4) + socket.CMSG_SPACE(4))
        self.tclass_cmsg_ok = True
        self.err_logged = collections.Counter()
        self.log(f"start aftr={self.aftr_addr} tun={args.tun} mtu={args.mtu} "
                 f"bind={'::' if args.bind_any else self.aftr_addr} encap_limit={args.encap_limit}")

    # ------------------------------------------------------------------ output
    def log(self, msg):
        if self.logf:
            self.logf.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}\n")

    def error(self, name, detail=""):
        self.errors[name] += 1
        n = self.err_logged[name] = self.err_logged[name] + 1
        if n <= 100 or n % 1000 == 0:
            self.log(f"error {name} count={self.errors[name]} {detail}")

    def write_stats(self):
        if not self.args.stats:
            return
        d = {"pid": os.getpid(), "aftr": self.aftr_addr, "tun": self.args.tun,
             "started": self.started, "updated": time.time()}
        d.update(self.counters)
        d["errors"] = dict(self.errors)
        d["errors_total"] = sum(self.errors.values())
        d.update(self.last)
        d["binding_count"] = len(self.bindings)
        d["bindings"] = dict(self.bindings)
        write_json_atomic(self.args.stats, d)

    # ------------------------------------------------------------------ decap
    def validate(self, pkt):
        """Return an error name, or None if the inner IPv4 packet is valid."""
        err = validate_ipv4(pkt)
        if err is None and is_fragment(pkt):
            self.counters["decap_fragments"] += 1
        return err

    def decap_one(self):
        try:
            pkt, anc, flags, src = self.sock.recvmsg(65535, self.ancsize)
        except BlockingIOError:
            return False
        b4 = src[0]
        dst, hlim, tclass, _ = parse_cmsgs(anc)
        if hlim is not None:
            self.last["last_hop_limit"] = hlim
        if tclass is not None:
            self.last["last_tclass"] = tclass
        self.last["last_b4"] = b4
        if flags & socket.MSG_TRUNC:
            self.error("truncated", f"b4={b4}")
            return True
        if dst != self.aftr_packed:
            d = socket.inet_ntop(socket.AF_INET6, dst) if dst else "?"
            self.error("bad-destination", f"b4={b4} dst={d}")
            return True
        err = self.validate(pkt)
        if err:
            self.error(err, f"b4={b4} len={len(pkt)} head={pkt[:28].hex()}")
            return True
        tos = pkt[1]
        self.last["last_inner_tos"] = tos
        if tclass is not None and tclass != tos:
            self.error("tclass-mismatch", f"b4={b4} tclass={tclass:#04x} tos={tos:#04x}")
        inner_src = socket.inet_ntop(socket.AF_INET, pkt[12:16])
        old = self.bindings.get(inner_src)
        if old != b4:
            self.log(f"binding {inner_src} -> {b4}" + (f" (was {old})" if old else " (new)"))
        self.bindings[inner_src] = b4
        self.bindings.move_to_end(inner_src)
        while len(self.bindings) > self.args.max_bindings:
            self.bindings.popitem(last=False)
            self.counters["bindings_evicted"] += 1
        try:
            os.write(self.tun, pkt)
        except OSError as e:
            self.error("tun-write-error", f"{e}")
            return True
        self.counters["decap_ok"] += 1
        self.counters["decap_bytes"] += len(pkt)
        return True

    # ------------------------------------------------------------------ encap
    def encap_one(self):
        try:
            pkt = os.read(self.tun, 65535)
        except BlockingIOError:
            return False
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            self.error("encap-not-ipv4", f"len={len(pkt)}")
            return True
        dst = socket.inet_ntop(socket.AF_INET, pkt[16:20])
        b4 = self.bindings.get(dst)
        if b4 is None:
            src = socket.inet_ntop(socket.AF_INET, pkt[12:16])
            self.error("no-binding", f"inner {src} -> {dst} proto={pkt[9]}")
            return True
        anc = []
        if self.tclass_cmsg_ok:
            anc = [(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, struct.pack("i", pkt[1]))]
        if self.dstopts:
            anc.append((socket.IPPROTO_IPV6, IPV6_DSTOPTS, self.dstopts))
        try:
            self.sock.sendmsg([pkt], anc, 0, (b4, 0))
        except OSError as e:
            if self.tclass_cmsg_ok and anc and e.errno == errno.EINVAL:
                # per-packet tclass refused: fall back to plain sends
                self.tclass_cmsg_ok = False
                self.log("IPV6_TCLASS cmsg rejected, sending without traffic class")
                return True
            self.error("encap-send-error", f"b4={b4} len={len(pkt)} {e}")
            return True
        self.counters["encap_ok"] += 1
        self.counters["encap_bytes"] += len(pkt)
        if self.dstopts:
            self.counters["encap_limit_sent"] += 1
        return True

    # ------------------------------------------------------------------ loop
    def run(self):
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(self.tun, select.POLLIN)
        sock_fd = self.sock.fileno()
        self.write_stats()
        next_stats = time.monotonic() + 1.0
        try:
            while True:
                timeout = max(0.0, next_stats - time.monotonic())
                for fd, _ev in poller.poll(timeout * 1000):
                    step = self.decap_one if fd == sock_fd else self.encap_one
                    for _ in range(256):
                        if not step():
                            break
                if time.monotonic() >= next_stats:
                    self.write_stats()
                    next_stats = time.monotonic() + 1.0
        except Shutdown as e:
            self.log(f"exit on signal {e.args[0]}")
        finally:
            self.write_stats()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--aftr", default="2001:db8:aaaa::1", help="AFTR IPv6 address (softwire endpoint)")
    p.add_argument("--tun", default="tun0")
    p.add_argument("--mtu", type=int, default=1460)
    p.add_argument("--route", action="append",
                   help="IPv4 prefix routed into the tun (repeatable; default 192.168.0.0/16)")
    p.add_argument("--bind-any", action="store_true",
                   help="bind the raw socket to :: so packets to other local addresses are "
                        "counted as bad-destination instead of being refused by the kernel")
    p.add_argument("--max-bindings", type=int, default=4096)
    p.add_argument("--encap-limit", type=int, choices=range(256), metavar="0..255",
                   help="send RFC 2473's Tunnel Encapsulation Limit option with this value "
                        "toward the B4, as Linux ip6tnl does (default: not sent)")
    p.add_argument("--stats", help="JSON stats file (rewritten every second)")
    p.add_argument("--log", help="log file (bindings and errors)")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        aftr = Aftr(args)
    except Shutdown:
        return 0
    # SIGUSR1: rewrite the stats file right now (tests need not wait a second)
    signal.signal(signal.SIGUSR1, lambda *_: aftr.write_stats())
    aftr.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
