#!/usr/bin/env python3
"""ipip.py - the provider's end of a fixed-IPv4 IPIP tunnel, for the lab.

The *independent* check of a router's fixed-IPv4 mode (transix / v6plus /
Xpass fixed IP, BBIX OCX): RFC 2473 IPv4-in-IPv6 (next header 4) between the
customer's registered tunnel-local IPv6 address and this end, carrying one
fixed global IPv4 address.  It shares no code with ipoed; standard library
only.  The softwire is terminated in userspace as in aftr.py and br.py (the
lab kernel has no ip6tnl): an AF_INET6/SOCK_RAW socket with protocol 4
bound to the tunnel-end address, and a TUN device whose only route is the
fixed /32, with no NAT: the fixed address reaches the servers as it is.

Registration: the customer's local address is whatever the provider's
update server last registered (update_server.py), kept in a small state
file (--registration, JSON {"local", "time", "by", "seq"}).  Whoever
changes it writes the file, then sends "reload" to this process's control
socket (--control, a Unix datagram socket) and gets back the address now in
force, so an "OK" from the update server means the tunnel end already
follows.  `ipip.py --register ADDR|none` does that from the command line
(lab.sh ipip register).

Decapsulation (customer -> here -> tun): dropped and counted by name under
"violations": not-registered (no address registered yet), wrong-outer-source
(outer source is not the registered address), every malformed-IPv4 name of
tunlib.validate_ipv4, inner-source-not-fixed (inner source is not the fixed
IPv4: a LAN address that escaped the NAT, say).  Counted but forwarded (the
packet is harmless here, but the customer broke a rule of the service):
encap-limit-option (RFC 2473's Tunnel Encapsulation Limit in a Destination
Options header; BBIX asks for none), inner-too-big (inner packet longer than
the tunnel MTU, 1460), mss-above-clamp (a TCP SYN whose MSS option exceeds
tunnel MTU - 40 = 1420), tclass-mismatch (outer traffic class != inner TOS).
Encapsulation (tun -> here -> customer): everything to the fixed IPv4 goes to
the registered address, hop limit 64, traffic class = inner TOS (optionally
with an encapsulation-limit option, --encap-limit, as Linux ip6tnl sends by
default); what cannot be sent is counted under "errors" (not the customer's
fault).

Outputs: --stats FILE (JSON) is rewritten atomically every second when
something changed, on SIGUSR1 and at exit; --log FILE gets the registrations
and the violations/errors (the first 100 of each name, then every 1000th).
SIGTERM/SIGINT exit cleanly.
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
import tempfile
import time

from tunlib import (IPPROTO_ICMP, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, IPV6_DSTOPTS,
                    IPV6_RECVDSTOPTS, Shutdown, Tallies, force_bufs, has_encap_limit, is_fragment,
                    on_signal, open_tun, parse_cmsgs, validate_ipv4, write_json_atomic)

PROTO_NAMES = {IPPROTO_ICMP: "icmp", IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp"}

# Packets from the customer that break the service (tests require 0).
VIOLATIONS = (
    "truncated",              # recvmsg() reported MSG_TRUNC
    "bad-destination",        # outer destination is not this end (--bind-any)
    "not-registered",         # no local address registered yet (dropped)
    "wrong-outer-source",     # outer source != the registered local address (dropped)
    "short-packet",           # the malformed-IPv4 names of tunlib.validate_ipv4 (dropped)
    "bad-version",
    "bad-ihl",
    "bad-total-length",
    "bad-ip-checksum",
    "ttl-zero",
    "short-l4",
    "bad-tcp-checksum",
    "bad-udp-checksum",
    "bad-icmp-checksum",
    "inner-source-not-fixed", # inner IPv4 source is not the fixed address (dropped)
    "encap-limit-option",     # Tunnel Encapsulation Limit option present (forwarded)
    "inner-too-big",          # inner packet longer than --tunnel-mtu (forwarded)
    "mss-above-clamp",        # TCP SYN with MSS > --max-mss (forwarded)
    "tclass-mismatch",        # outer traffic class != inner TOS (forwarded)
)
# Trouble on the provider's side.
ERRORS = (
    "tun-write-error",
    "encap-not-ipv4",         # tun delivered something that is not IPv4
    "encap-not-fixed",        # tun delivered IPv4 not addressed to the fixed address
    "encap-not-registered",   # nobody registered: nowhere to send it
    "encap-send-error",       # sendmsg() on the raw socket failed
)
MAX_WRONG_SOURCES = 64


def read_registration(path):
    """The registration file's content, or an empty registration."""
    try:
        with open(path) as f:
            d = json.load(f)
        if d.get("local") is not None:
            d["local"] = str(ipaddress.IPv6Address(d["local"]))
        return d
    except (OSError, ValueError):
        return {"local": None, "time": None, "by": None, "seq": 0}


def register(state_file, control, local, by, timeout=2.0):
    """Record `local` (an IPv6 address, or None to unregister) as the
    customer's tunnel address and make a running ipip.py take it.

    Returns what ipip.py then uses ({"local", "seq"}), or None when no
    ipip.py answers on `control` (it reads the file when it starts)."""
    if local is not None:
        local = str(ipaddress.IPv6Address(local))
    old = read_registration(state_file)
    d = {"local": local, "time": time.time(), "by": by, "seq": int(old.get("seq") or 0) + 1}
    write_json_atomic(state_file, d)
    if not control or not os.path.exists(control):
        return None
    # A path-bound client socket: ipip.py may live in another network
    # namespace, where an abstract (autobind) address would not reach.
    tmpdir = os.path.dirname(os.path.abspath(control))
    fd, cpath = tempfile.mkstemp(prefix=".ipip-client-", dir=tmpdir)
    os.close(fd)
    os.unlink(cpath)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind(cpath)
        s.settimeout(timeout)
        s.sendto(b"reload", control)
        reply = json.loads(s.recv(4096))
    except (OSError, ValueError):
        return None
    finally:
        s.close()
        try:
            os.unlink(cpath)
        except OSError:
            pass
    return reply


class Ipip(Tallies):
    def __init__(self, args):
        self.args = args
        self.addr = str(ipaddress.IPv6Address(args.addr))
        self.addr_packed = socket.inet_pton(socket.AF_INET6, self.addr)
        self.fixed = str(ipaddress.IPv4Address(args.ipv4))
        self.fixed_packed = socket.inet_aton(self.fixed)
        self.counters = {"decap_ok": 0, "decap_bytes": 0, "encap_ok": 0, "encap_bytes": 0,
                         "decap_fragments": 0, "encap_fragments": 0, "registration_changes": 0,
                         "encap_limit_sent": 0}
        self.violations = {n: 0 for n in VIOLATIONS}
        self.errors = {n: 0 for n in ERRORS}
        self.wrong_sources = collections.OrderedDict()   # outer source -> packets (bounded)
        self.ports = {}                                  # proto name -> set of source ports
        self.last = {"last_hop_limit": None, "last_tclass": None, "last_source": None,
                     "max_inner_len": 0, "max_mss": None}
        self.dstopts = None
        if args.encap_limit is not None:
            self.dstopts = bytes([0, 0, 4, 1, args.encap_limit, 1, 1, 0])
        self.registration = {"local": None, "time": None, "by": None, "seq": 0}
        self.local_packed = None
        self.dirty = True
        self.stats_wanted = False
        self.started = time.time()
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        self.err_logged = collections.Counter()

        if args.local:
            self.set_registration({"local": str(ipaddress.IPv6Address(args.local)), "time": time.time(),
                                   "by": "command line", "seq": 0})
            if args.registration:
                write_json_atomic(args.registration, self.registration)
        elif args.registration:
            self.set_registration(read_registration(args.registration))

        self.tun = open_tun(args.tun, args.mtu)
        subprocess.run(["ip", "link", "set", "dev", args.tun, "txqueuelen", "10000"], check=True)
        subprocess.run(["ip", "-4", "route", "replace", f"{self.fixed}/32", "dev", args.tun], check=True)

        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPIP)
        self.sock.bind(("::" if args.bind_any else self.addr, 0))
        for opt in (socket.IPV6_RECVPKTINFO, socket.IPV6_RECVHOPLIMIT, socket.IPV6_RECVTCLASS,
                    IPV6_RECVDSTOPTS):
            self.sock.setsockopt(socket.IPPROTO_IPV6, opt, 1)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 64)
        force_bufs(self.sock)
        self.sock.setblocking(False)

        self.ctl = None
        if args.control:
            try:
                os.unlink(args.control)
            except FileNotFoundError:
                pass
            self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.ctl.bind(args.control)
            self.ctl.setblocking(False)
        self.log(f"start addr={self.addr} ipv4={self.fixed} tun={args.tun} mtu={args.mtu} "
                 f"tunnel_mtu={args.tunnel_mtu} max_mss={args.max_mss} "
                 f"local={self.registration['local']} encap_limit={args.encap_limit}")

    # ------------------------------------------------------------------ output
    def write_stats(self):
        if not self.args.stats:
            return
        d = {"pid": os.getpid(), "addr": self.addr, "ipv4": self.fixed, "tun": self.args.tun,
             "tunnel_mtu": self.args.tunnel_mtu, "max_mss": self.args.max_mss,
             "started": self.started, "updated": time.time(),
             "registered_local": self.registration["local"], "registration": dict(self.registration)}
        d.update(self.counters)
        d["violations"] = dict(self.violations)
        d["violations_total"] = sum(self.violations.values())
        d["errors"] = dict(self.errors)
        d["errors_total"] = sum(self.errors.values())
        d["wrong_sources"] = dict(self.wrong_sources)
        d["ports_used"] = {p: len(s) for p, s in self.ports.items()}
        d["port_range"] = {p: [min(s), max(s)] for p, s in self.ports.items() if s}
        d.update(self.last)
        write_json_atomic(self.args.stats, d)
        self.dirty = False

    # ------------------------------------------------------------------ registration
    def set_registration(self, reg):
        old = self.registration.get("local")
        self.registration = {k: reg.get(k) for k in ("local", "time", "by", "seq")}
        local = self.registration["local"]
        self.local_packed = socket.inet_pton(socket.AF_INET6, local) if local else None
        if local != old:
            self.counters["registration_changes"] += 1
            self.log(f"registered local={local} (was {old}) by={reg.get('by')} seq={reg.get('seq')}")
        self.dirty = True

    def control_one(self):
        try:
            msg, peer = self.ctl.recvfrom(4096)
        except BlockingIOError:
            return False
        if msg.strip() == b"reload" and self.args.registration:
            self.set_registration(read_registration(self.args.registration))
        self.write_stats()
        if peer:
            try:
                self.ctl.sendto(json.dumps({"local": self.registration["local"],
                                            "seq": self.registration["seq"]}).encode(), peer)
            except OSError:
                pass
        return True

    # ------------------------------------------------------------------ decap
    @staticmethod
    def syn_mss(pkt, ihl):
        """The MSS option of an unfragmented TCP SYN, or None."""
        if pkt[9] != IPPROTO_TCP or is_fragment(pkt):
            return None
        tcp = pkt[ihl:]
        if len(tcp) < 20 or not tcp[13] & 0x02:
            return None
        end = min(len(tcp), (tcp[12] >> 4) * 4)
        i = 20
        while i < end:
            kind = tcp[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            if i + 1 >= end or tcp[i + 1] < 2:
                break
            if kind == 2 and tcp[i + 1] == 4 and i + 4 <= end:
                return struct.unpack_from("!H", tcp, i + 2)[0]
            i += tcp[i + 1]
        return None

    def decap_one(self):
        try:
            pkt, anc, flags, src = self.sock.recvmsg(65535, 512)
        except BlockingIOError:
            return False
        source = src[0].split("%")[0]
        dst, hlim, tclass, dstopts = parse_cmsgs(anc)
        self.last["last_hop_limit"] = hlim
        self.last["last_tclass"] = tclass
        self.last["last_source"] = source
        self.dirty = True
        if flags & socket.MSG_TRUNC:
            self.violation("truncated", f"src={source}")
            return True
        if dst != self.addr_packed:
            d = socket.inet_ntop(socket.AF_INET6, dst) if dst else "?"
            self.violation("bad-destination", f"src={source} dst={d}")
            return True
        if self.local_packed is None:
            self.violation("not-registered", f"src={source}")
            return True
        if socket.inet_pton(socket.AF_INET6, source) != self.local_packed:
            self.wrong_sources[source] = self.wrong_sources.get(source, 0) + 1
            self.wrong_sources.move_to_end(source)
            while len(self.wrong_sources) > MAX_WRONG_SOURCES:
                self.wrong_sources.popitem(last=False)
            self.violation("wrong-outer-source", f"src={source} registered={self.registration['local']}")
            return True
        err = validate_ipv4(pkt)
        if err:
            self.violation(err, f"src={source} len={len(pkt)} head={pkt[:28].hex()}")
            return True
        if pkt[12:16] != self.fixed_packed:
            self.violation("inner-source-not-fixed",
                           f"inner src={socket.inet_ntop(socket.AF_INET, pkt[12:16])} "
                           f"dst={socket.inet_ntop(socket.AF_INET, pkt[16:20])} proto={pkt[9]}")
            return True
        for opts in dstopts:
            if has_encap_limit(opts):
                self.violation("encap-limit-option", f"src={source} dstopts={opts.hex()}")
        if len(pkt) > self.args.tunnel_mtu:
            self.violation("inner-too-big", f"src={source} len={len(pkt)}")
        if tclass is not None and tclass != pkt[1]:
            self.violation("tclass-mismatch", f"src={source} tclass={tclass:#04x} tos={pkt[1]:#04x}")
        ihl = (pkt[0] & 0x0F) * 4
        mss = self.syn_mss(pkt, ihl)
        if mss is not None:
            self.last["max_mss"] = max(mss, self.last["max_mss"] or 0)
            if mss > self.args.max_mss:
                self.violation("mss-above-clamp", f"src={source} mss={mss}")
        self.last["max_inner_len"] = max(self.last["max_inner_len"], len(pkt))
        if is_fragment(pkt):
            self.counters["decap_fragments"] += 1
        self.note_port(pkt, ihl)
        try:
            os.write(self.tun, pkt)
        except OSError as e:
            self.error("tun-write-error", f"{e}")
            return True
        self.counters["decap_ok"] += 1
        self.counters["decap_bytes"] += len(pkt)
        return True

    def note_port(self, pkt, ihl):
        """Remember the source port / ICMP query identifier (bounded)."""
        if struct.unpack_from("!H", pkt, 6)[0] & 0x1FFF:
            return
        proto, l4 = pkt[9], pkt[ihl:]
        if proto in (IPPROTO_TCP, IPPROTO_UDP) and len(l4) >= 2:
            port = struct.unpack_from("!H", l4, 0)[0]
        elif proto == IPPROTO_ICMP and len(l4) >= 8 and l4[0] in (8, 13):
            port = struct.unpack_from("!H", l4, 4)[0]
        else:
            return
        s = self.ports.setdefault(PROTO_NAMES[proto], set())
        if len(s) < 65536:
            s.add(port)

    # ------------------------------------------------------------------ encap
    def encap_one(self):
        try:
            pkt = os.read(self.tun, 65535)
        except BlockingIOError:
            return False
        self.dirty = True
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            self.error("encap-not-ipv4", f"len={len(pkt)}")
            return True
        if pkt[16:20] != self.fixed_packed:
            self.error("encap-not-fixed", f"dst={socket.inet_ntop(socket.AF_INET, pkt[16:20])}")
            return True
        local = self.registration["local"]
        if local is None:
            self.error("encap-not-registered", f"from {socket.inet_ntop(socket.AF_INET, pkt[12:16])}")
            return True
        anc = [(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, struct.pack("i", pkt[1]))]
        if self.args.bind_any:   # bound to ::, the kernel would pick another source
            anc.append((socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, self.addr_packed + b"\0" * 4))
        if self.dstopts:
            anc.append((socket.IPPROTO_IPV6, IPV6_DSTOPTS, self.dstopts))
        try:
            self.sock.sendmsg([pkt], anc, 0, (local, 0))
        except OSError as e:
            self.error("encap-send-error", f"to={local} len={len(pkt)} {e}")
            return True
        if is_fragment(pkt):
            self.counters["encap_fragments"] += 1
        if self.dstopts:
            self.counters["encap_limit_sent"] += 1
        self.counters["encap_ok"] += 1
        self.counters["encap_bytes"] += len(pkt)
        return True

    # ------------------------------------------------------------------ loop
    def run(self):
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(self.tun, select.POLLIN)
        if self.ctl:
            poller.register(self.ctl.fileno(), select.POLLIN)
        # SIGUSR1 wakes poll() through this pipe; the loop writes the stats.
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        poller.register(wake_r, select.POLLIN)
        steps = {self.sock.fileno(): self.decap_one, self.tun: self.encap_one}
        if self.ctl:
            steps[self.ctl.fileno()] = self.control_one
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
                    for _ in range(256):
                        if not steps[fd]():
                            break
                if self.stats_wanted:
                    self.stats_wanted = False
                    self.write_stats()
                if time.monotonic() >= next_tick:
                    if self.dirty:
                        self.write_stats()
                    next_tick = time.monotonic() + 1.0
        except Shutdown as e:
            self.log(f"exit on signal {e.args[0]}")
        finally:
            self.write_stats()
            if self.ctl:
                try:
                    os.unlink(self.args.control)
                except OSError:
                    pass


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--addr", default="2001:db8:77:cc::1", help="this tunnel end's IPv6 address")
    p.add_argument("--ipv4", default="192.0.2.77", help="the customer's fixed IPv4 address")
    p.add_argument("--local", help="register this customer address at start (else: --registration)")
    p.add_argument("--registration", help="registration state file (JSON), read at start and on reload")
    p.add_argument("--control", help="Unix datagram socket: 'reload' re-reads --registration")
    p.add_argument("--tun", default="ipiptun")
    p.add_argument("--mtu", type=int, default=1500, help="MTU of the tun (toward the customer)")
    p.add_argument("--tunnel-mtu", type=int, default=1460,
                   help="longest inner packet the customer may send (longer: inner-too-big)")
    p.add_argument("--max-mss", type=int, help="largest MSS in a customer's SYN (default tunnel MTU - 40)")
    p.add_argument("--bind-any", action="store_true",
                   help="bind to :: so packets to other local addresses count as bad-destination")
    p.add_argument("--encap-limit", type=int, choices=range(256), metavar="0..255",
                   help="send RFC 2473's Tunnel Encapsulation Limit option toward the customer")
    p.add_argument("--stats", help="JSON stats file")
    p.add_argument("--log", help="log file (registrations, violations, errors)")
    p.add_argument("--register", metavar="ADDR|none",
                   help="set the registration (file + running instance) and exit: prints the result")
    args = p.parse_args()
    if args.max_mss is None:
        args.max_mss = args.tunnel_mtu - 40
    if args.register is not None:
        if not args.registration:
            p.error("--register needs --registration")
        local = None if args.register == "none" else args.register
        try:
            reply = register(args.registration, args.control, local, "command line")
        except ValueError as e:
            p.error(str(e))
        print(json.dumps({"registered": local, "tunnel_end": reply}))
        return 0
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        end = Ipip(args)
    except Shutdown:
        return 0
    signal.signal(signal.SIGUSR1, lambda *_: setattr(end, "stats_wanted", True))
    end.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
