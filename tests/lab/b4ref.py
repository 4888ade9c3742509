#!/usr/bin/env python3
"""b4ref.py - LAB-ONLY reference DS-Lite B4, used only by `lab.sh selftest`
(and, pointed at br.py with a CE address as --b4, by tests/tests/lab_br.rs as
the tunnel of a kernel-stack MAP-E CE).

It lets the selftest prove the lab (hgw, aftr.py, NAT, servers) works before
ipoed exists: the router namespace temporarily becomes a plain kernel router
and this script plays the B4 softwire endpoint, because the lab kernel has no
ip6tnl.  It is NOT a model of ipoed and shares no code with it or aftr.py.

  TUN --tun (IFF_TUN|IFF_NO_PI, MTU --mtu, up, IPv6 disabled on it),
      IPv4 routes --route (default: "default") point into it.
  tun -> raw AF_INET6 socket, protocol 4, bound to --b4, connected to --aftr:
      the kernel prepends IPv6 (next header 4); hop limit 64, traffic class
      copied from the inner TOS.
  raw socket -> tun: the kernel has already stripped the outer IPv6 header.

No validation, no statistics beyond two counters printed at exit.
"""

import argparse
import fcntl
import os
import select
import signal
import socket
import struct
import subprocess
import sys

TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCSIFMTU, IFF_UP = 0x8913, 0x8914, 0x8922, 0x1


def ifreq(name, fmt, val):
    return struct.pack("16s" + fmt, name.encode(), val).ljust(40, b"\0")


def main():
    p = argparse.ArgumentParser(description="lab-only reference B4 (selftest)")
    p.add_argument("--b4", default="2001:db8:0:100::2")
    p.add_argument("--aftr", default="2001:db8:aaaa::1")
    p.add_argument("--tun", default="b4tun")
    p.add_argument("--mtu", type=int, default=1460)
    p.add_argument("--route", action="append")
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    tun = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    fcntl.ioctl(tun, TUNSETIFF, ifreq(a.tun, "H", IFF_TUN | IFF_NO_PI))
    with open(f"/proc/sys/net/ipv6/conf/{a.tun}/disable_ipv6", "w") as f:
        f.write("1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, SIOCSIFMTU, ifreq(a.tun, "i", a.mtu))
        flags = struct.unpack_from("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq(a.tun, "H", 0)))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, ifreq(a.tun, "H", flags | IFF_UP))
    for r in a.route or ["default"]:
        subprocess.run(["ip", "-4", "route", "replace", r, "dev", a.tun], check=True)

    raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 4)
    raw.bind((a.b4, 0))
    raw.connect((a.aftr, 0))  # also filters: only packets from the AFTR are received
    raw.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 64)
    raw.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE: absorb aftr.py bursts

    up = down = 0
    try:
        while True:
            r, _, _ = select.select([tun, raw], [], [])
            if tun in r:
                pkt = os.read(tun, 65535)
                if pkt and pkt[0] >> 4 == 4:
                    tc = [(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, struct.pack("i", pkt[1]))]
                    try:
                        raw.sendmsg([pkt], tc)
                        up += 1
                    except OSError as e:
                        print(f"b4ref: send: {e}", file=sys.stderr, flush=True)
            if raw in r:
                try:
                    os.write(tun, raw.recv(65535))
                    down += 1
                except OSError as e:
                    print(f"b4ref: recv/write: {e}", file=sys.stderr, flush=True)
    finally:
        print(f"b4ref: encapsulated={up} decapsulated={down}", flush=True)


if __name__ == "__main__":
    main()
