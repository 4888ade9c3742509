#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the lab's captures.

    python3 fuzz/seeds.py [--out fuzz/seeds] [--max-per-target N] [capture ...]

Reads classic pcap and pcapng files (Ethernet link type only; default:
/run/ipoe-lab/*.pcap*, which the lab tests leave behind), tells each
frame's side and direction by the router's MACs (WAN 02:00:00:00:02:02,
LAN 02:00:00:00:02:01), and writes seed files in the input format of each
target (fuzz/src/lib.rs):

  graph_wan     frames received on the WAN, grouped by flow (fragments of
                one datagram together), sessions opened first, plus built
                ones (options headers and ECN from the AFTR, fragments from
                elsewhere)
  graph_lan     frames received on the LAN: a LAN capture's, else rebuilt
                from what the router sent on the WAN (the IPv4 inside
                DS-Lite and forwarded IPv6 from the LAN /64, one hop
                earlier), plus built ones (ARP, NDP, RS, DHCP, DNS, echo)
  dhcp4_server  DHCPv4 payloads from UDP port 68 to 67 (none in a WAN
                capture: built DORA, INFORM, DECLINE, RELEASE sequences)
  dhcp6_client  DHCPv6 replies from UDP 547 to 546, in each client state
  ra_ndp_arp    RA, NS, NA and ARP frames (and RAs bare, from the ICMPv6
                type on)
  config        config/examples/*.yaml and a few broken ones
  ctl_request   request lines of control/PROTOCOL.md
  dhcp6_server  DHCPv6 client messages to UDP 547 (ISC dhclient's, from
                capture-lan-clients.sh, and the router's own WAN client),
                the Server Identifier made the router's; Renew, Rebind and
                Decline made from a captured Request
  lan_ra        Router Solicitations (the kernel's, rdisc6's), other
                routers' RAs, and WAN-side input changes
  aftr_resolver AAAA answers from dnsmasq (the lab's WAN capture and the
                resolver tests' captures)
  dns_proxy     dig's queries to the router over UDP and TCP, answered with
                dnsmasq's answers (question spliced from the forward)

Only the Python 3 standard library is used. Files are named by the hash of
their content, so running it again adds nothing twice.
"""

import argparse
import glob
import hashlib
import ipaddress
import os
import struct
import sys

WAN_MAC = bytes.fromhex("020000000202")
LAN_MAC = bytes.fromhex("020000000201")
GW_MAC = bytes.fromhex("020000000301")
HOST_MAC = bytes.fromhex("020000000110")
ROUTER_MACS = {WAN_MAC, LAN_MAC}
LAN_PREFIX = ipaddress.IPv6Network("2001:db8:0:111::/64")
B4 = ipaddress.IPv6Address("2001:db8:0:100::2")
AFTR = ipaddress.IPv6Address("2001:db8:aaaa::1")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ---------------------------------------------------------------- captures


def read_pcap(data):
    """Frames of a classic pcap file (Ethernet only)."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise ValueError("not a pcap file")
    linktype = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
    if linktype != 1:
        return
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off : off + 16])
        off += 16
        yield data[off : off + incl]
        off += incl


def read_pcapng(data):
    """Frames of a pcapng file (EPB, SPB and obsolete PB; Ethernet only)."""
    off = 0
    end = "<"
    links = []
    while off + 12 <= len(data):
        btype = struct.unpack(end + "I", data[off : off + 4])[0]
        if btype == 0x0A0D0D0A:
            bom = data[off + 8 : off + 12]
            end = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        blen = struct.unpack(end + "I", data[off + 4 : off + 8])[0]
        if blen < 12 or off + blen > len(data):
            break
        body = data[off + 8 : off + blen - 4]
        if btype == 0x00000001:  # interface description
            links.append(struct.unpack(end + "H", body[:2])[0])
        elif btype == 0x00000006:  # enhanced packet
            iface, _, _, caplen, _ = struct.unpack(end + "IIIII", body[:20])
            if iface < len(links) and links[iface] == 1:
                yield body[20 : 20 + caplen]
        elif btype == 0x00000003:  # simple packet
            if links and links[0] == 1:
                origlen = struct.unpack(end + "I", body[:4])[0]
                yield body[4 : 4 + origlen]
        elif btype == 0x00000002:  # obsolete packet block
            iface, _, _, _, caplen, _ = struct.unpack(end + "HHIIII", body[:20])
            if iface < len(links) and links[iface] == 1:
                yield body[20 : 20 + caplen]
        off += blen


def read_capture(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return list(read_pcapng(data))
    return list(read_pcap(data))


# ---------------------------------------------------------------- builders


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip6b(a):
    return ipaddress.IPv6Address(a).packed


def ip4b(a):
    return ipaddress.IPv4Address(a).packed


def eth(dst, src, ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, ttl=64, ident=1, frag=0):
    h = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, ttl, proto, 0, ip4b(src), ip4b(dst)
    )
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def l4_sum4(src, dst, proto, seg, at):
    pseudo = ip4b(src) + ip4b(dst) + struct.pack("!BBH", 0, proto, len(seg))
    c = csum(pseudo + seg)
    if proto == 17 and c == 0:
        c = 0xFFFF
    return seg[:at] + struct.pack("!H", c) + seg[at + 2 :]


def l4_sum6(src, dst, proto, seg, at):
    pseudo = ip6b(src) + ip6b(dst) + struct.pack("!IxxxB", len(seg), proto)
    c = csum(pseudo + seg)
    if proto == 17 and c == 0:
        c = 0xFFFF
    return seg[:at] + struct.pack("!H", c) + seg[at + 2 :]


def ipv6(src, dst, nh, payload, hop=64):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, hop, ip6b(src), ip6b(dst)) + payload


def udp4(src, dst, sport, dport, data):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return ipv4(src, dst, 17, l4_sum4(src, dst, 17, seg, 6))


def udp6(src, dst, sport, dport, data, hop=64):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return ipv6(src, dst, 17, l4_sum6(src, dst, 17, seg, 6), hop)


def icmp6(src, dst, typ, code, body, hop=255):
    seg = struct.pack("!BBH", typ, code, 0) + body
    return ipv6(src, dst, 58, l4_sum6(src, dst, 58, seg, 2), hop)


def icmp4(src, dst, typ, code, body, ttl=64):
    seg = struct.pack("!BBH", typ, code, 0) + body
    seg = seg[:2] + struct.pack("!H", csum(seg)) + seg[4:]
    return ipv4(src, dst, 1, seg, ttl)


def tcp4(src, dst, sport, dport, flags, data=b"", seq=1000, ack=0):
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x60, flags, 64240, 0, 0)
    seg += b"\x02\x04\x05\xb4" + data  # MSS 1460
    return ipv4(src, dst, 6, l4_sum4(src, dst, 6, seg, 16))


def tcp6(src, dst, sport, dport, flags, data=b"", seq=1000, ack=0, hop=64):
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x60, flags, 64240, 0, 0)
    seg += b"\x02\x04\x05\xa0" + data
    return ipv6(src, dst, 6, l4_sum6(src, dst, 6, seg, 16), hop)


def mcast_mac(addr):
    return b"\x33\x33" + ip6b(addr)[12:]


def solicited_node(addr):
    return "ff02::1:ff" + ip6b(addr)[13:].hex()[:2] + ":" + ip6b(addr)[14:].hex()


def arp(op, sha, spa, tha, tpa, dst=b"\xff" * 6):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, ip4b(spa), tha, ip4b(tpa))
    return eth(dst, sha, 0x0806, body)


def ns(src_mac, src, dst, target, lla=True, dst_mac=None):
    body = b"\0\0\0\0" + ip6b(target)
    if lla:
        body += b"\x01\x01" + src_mac
    return eth(dst_mac or mcast_mac(dst), src_mac, 0x86DD, icmp6(src, dst, 135, 0, body))


def na(src_mac, src, dst, target, flags=0x60, dst_mac=None):
    body = struct.pack("!B3x", flags) + ip6b(target) + b"\x02\x01" + src_mac
    return eth(dst_mac or mcast_mac(dst), src_mac, 0x86DD, icmp6(src, dst, 136, 0, body))


def ra_message(lifetime=1800, flags=0xC0, prefixes=(("2001:db8:0:100::", 64, 0xC0),), mtu=1500,
               rdnss=("2001:db8:0:100::1",), dnssl=("lab.example",), slla=GW_MAC):
    """The RA from its ICMPv6 type byte on, checksum 0."""
    body = struct.pack("!BBHII", 64, flags, lifetime, 0, 0)
    if slla:
        body += b"\x01\x01" + slla
    if mtu:
        body += struct.pack("!BBHI", 5, 1, 0, mtu)
    for p, plen, pflags in prefixes:
        body += struct.pack("!BBBBIII16s", 3, 4, plen, pflags, 7200, 3600, 0, ip6b(p))
    if rdnss:
        body += struct.pack("!BBHI", 25, 1 + 2 * len(rdnss), 0, 3600)
        for a in rdnss:
            body += ip6b(a)
    if dnssl:
        names = b"".join(
            b"".join(bytes([len(l)]) + l.encode() for l in d.split(".")) + b"\0" for d in dnssl
        )
        names += b"\0" * (-(len(names) + 8) % 8)
        body += struct.pack("!BBHI", 31, (8 + len(names)) // 8, 0, 3600) + names
    return struct.pack("!BBH", 134, 0, 0) + body


def ra_frame(**kw):
    msg = ra_message(**kw)
    packet = ipv6("fe80::1", "ff02::1", 58, l4_sum6("fe80::1", "ff02::1", 58, msg, 2), 255)
    return eth(mcast_mac("ff02::1"), GW_MAC, 0x86DD, packet)


def dhcp4(msg_type, mac, xid=0x0BADCAFE, ciaddr="0.0.0.0", flags=0, options=(), sname=b"", file=b""):
    h = struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 0, xid, 0, flags, ip4b(ciaddr),
                    bytes(4), bytes(4), bytes(4))
    h += mac + bytes(10) + sname.ljust(64, b"\0") + file.ljust(128, b"\0")
    h += b"\x63\x82\x53\x63" + bytes([53, 1, msg_type])
    for code, value in options:
        h += bytes([code, len(value)]) + value
    return h + b"\xff"


# ---------------------------------------------------------------- seeds


def record(flags, data):
    return bytes([flags]) + struct.pack("!H", len(data)) + data


class Seeds:
    def __init__(self, out, limit, only=()):
        self.out = out
        self.limit = limit
        self.only = only
        self.count = {}

    def add(self, target, header, records):
        """records: [(flags, bytes)]; at most 32 are read by a target."""
        data = bytes(header) + b"".join(record(f, d) for f, d in records[:32])
        if self.only and target not in self.only:
            return
        if self.count.get(target, 0) >= self.limit:
            return
        d = os.path.join(self.out, target)
        os.makedirs(d, exist_ok=True)
        name = hashlib.sha1(data).hexdigest()[:16]
        path = os.path.join(d, name)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
        self.count[target] = self.count.get(target, 0) + 1

    def add_raw(self, target, name, data):
        if self.only and target not in self.only:
            return
        d = os.path.join(self.out, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        self.count[target] = self.count.get(target, 0) + 1


def parse(frame):
    """(ethertype, l3 bytes, next header / proto, l4 bytes) or None."""
    if len(frame) < 14:
        return None
    et = struct.unpack("!H", frame[12:14])[0]
    l3 = frame[14:]
    if et == 0x86DD and len(l3) >= 40:
        return et, l3, l3[6], l3[40:]
    if et == 0x0800 and len(l3) >= 20:
        ihl = (l3[0] & 15) * 4
        return et, l3, l3[9], l3[ihl:]
    return et, l3, None, b""


def shape(frame):
    """What makes two frames 'the same kind' for picking a few of each."""
    p = parse(frame)
    if not p:
        return ("short",)
    et, l3, nh, l4 = p
    key = [frame[:12].hex(), et, nh]
    if et == 0x86DD and nh == 4 and len(l4) >= 20:
        inner_proto = l4[9]
        ihl = (l4[0] & 15) * 4
        key.append(inner_proto)
        if inner_proto == 6 and len(l4) >= ihl + 14:
            key.append(l4[ihl + 13])
    elif nh == 6 and len(l4) >= 14:
        key.append(l4[13])
    elif nh == 58 and l4:
        key.append(l4[0])
    elif nh == 44 and len(l4) >= 8:
        key.append(("frag", struct.unpack("!H", l4[2:4])[0] & 1))
    key.append(min(len(frame) // 256, 6))
    return tuple(key)


def side_of_capture(frames):
    macs = set()
    for f in frames:
        macs.add(f[:6])
        macs.add(f[6:12])
    if WAN_MAC in macs:
        return "wan"
    if LAN_MAC in macs:
        return "lan"
    return None


def lan_ingress_from_wan_egress(frame):
    """The frame the LAN host sent, rebuilt from what the router sent on
    the WAN: the IPv4 inside DS-Lite, or IPv6 from the LAN /64, with the
    TTL / hop limit the router took off given back."""
    p = frame and parse(frame)
    if not p or frame[6:12] != WAN_MAC:
        return None
    et, l3, nh, l4 = p
    if et != 0x86DD:
        return None
    src = ipaddress.IPv6Address(l3[8:24])
    if nh == 4 and src == B4 and len(l4) >= 20:
        inner = bytearray(l4)
        inner[8] = min(inner[8] + 1, 255)
        ihl = (inner[0] & 15) * 4
        inner[10:12] = b"\0\0"
        inner[10:12] = struct.pack("!H", csum(bytes(inner[:ihl])))
        return eth(LAN_MAC, HOST_MAC, 0x0800, bytes(inner))
    if src in LAN_PREFIX:
        ip = bytearray(l3)
        ip[7] = min(ip[7] + 1, 255)
        return eth(LAN_MAC, HOST_MAC, 0x86DD, bytes(ip))
    return None


def conv_key(frame):
    """The conversation a frame belongs to, in either direction and on
    either side of the router (the IPv4 inside DS-Lite on the WAN, bare on
    the LAN), or the datagram an outer fragment belongs to."""
    p = parse(frame)
    if not p:
        return None
    et, l3, nh, l4 = p
    if et == 0x86DD and nh == 44 and len(l4) >= 8:
        first = struct.unpack("!H", l4[2:4])[0] & ~7 == 0
        if first and l4[0] == 4:
            inner = conv_key(frame[:14] + l3[:6] + b"\x04" + l3[7:40] + l4[8:])
            if inner:
                return ("frag", l4[4:8], inner)
        return ("frag", l4[4:8], None)
    if et == 0x86DD and nh == 4:
        ip4 = l4
    elif et == 0x0800:
        ip4 = l3
    else:
        ip4 = None
    if ip4 is not None:
        ihl = (ip4[0] & 15) * 4
        if len(ip4) < ihl + 4:
            return None
        if ip4[9] == 1:
            return ("v4", 1, tuple(sorted([ip4[12:16], ip4[16:20]])))
        ends = sorted([ip4[12:16] + ip4[ihl : ihl + 2], ip4[16:20] + ip4[ihl + 2 : ihl + 4]])
        return ("v4", ip4[9], tuple(ends))
    if et == 0x86DD and nh in (6, 17, 58) and len(l4) >= 4:
        ports = (l4[0:2], l4[2:4]) if nh != 58 else (b"", b"")
        ends = sorted([l3[8:24] + ports[0], l3[24:40] + ports[1]])
        return ("v6", nh, tuple(ends))
    return None


def reassemble(frame, frags, events):
    """An outer IPv6 fragment the router sent: None until the last one of
    its datagram is there, then the whole frame (whose LAN original is
    rebuilt at the place of the first fragment). Other frames unchanged."""
    p = parse(frame)
    if not p or p[0] != 0x86DD or p[2] != 44 or len(p[3]) < 8:
        return frame
    l3, l4 = p[1], p[3]
    ident = l4[4:8]
    off_m = struct.unpack("!H", l4[2:4])[0]
    parts = frags.setdefault(ident, {"at": len(events), "parts": {}})
    parts["parts"][off_m & ~7] = (off_m & 1, l4[0], l4[8:])
    pieces = sorted(parts["parts"].items())
    data = b""
    for off, (more, nh, chunk) in pieces:
        if off != len(data):
            return None
        data += chunk
    if pieces[-1][1][0] or 0 not in parts["parts"]:
        return None
    del frags[ident]
    whole = frame[:14] + ipv6(ipaddress.IPv6Address(l3[8:24]), ipaddress.IPv6Address(l3[24:40]),
                              pieces[0][1][1], data, l3[7])
    rebuilt = lan_ingress_from_wan_egress(whole)
    if rebuilt:
        events.insert(parts["at"], ("lan", rebuilt))
    return None


def capture_seeds(paths):
    """Frames by where the router received them, in capture order:
    events [(side, frame)], and the DHCP and ND payloads among them."""
    events, dhcp6_replies, dhcp4_msgs, nd_frames = [], [], [], []
    frags = {}
    for path in paths:
        try:
            frames = read_capture(path)
        except (OSError, ValueError, struct.error) as e:
            print(f"seeds.py: skipping {path}: {e}", file=sys.stderr)
            continue
        side = side_of_capture(frames)
        print(f"seeds.py: {path}: {len(frames)} frames, {side or 'no router MAC'}", file=sys.stderr)
        for f in frames:
            ingress = None
            if f[6:12] in ROUTER_MACS:
                if side == "wan":
                    rebuilt = lan_ingress_from_wan_egress(reassemble(f, frags, events))
                    if rebuilt:
                        events.append(("lan", rebuilt))
                continue
            if f[:6] == WAN_MAC or (side == "wan" and f[0] & 1):
                ingress = "wan"
            elif f[:6] == LAN_MAC or (side == "lan" and f[0] & 1):
                ingress = "lan"
            if ingress is None:
                continue
            events.append((ingress, f))
            p = parse(f)
            if not p:
                continue
            et, l3, nh, l4 = p
            if et == 0x0806 or (nh == 58 and l4 and l4[0] in (133, 134, 135, 136)):
                nd_frames.append((ingress, f))
            if nh == 17 and len(l4) >= 8:
                sport, dport = struct.unpack("!HH", l4[:4])
                if (sport, dport) == (547, 546):
                    dhcp6_replies.append(l4[8:])
                if dport == 67:
                    dhcp4_msgs.append(l4[8:])
    return events, dhcp6_replies, dhcp4_msgs, nd_frames


def pick(frames, per_shape):
    seen = {}
    out = []
    for f in frames:
        k = shape(f)
        if seen.get(k, 0) < per_shape:
            seen[k] = seen.get(k, 0) + 1
            out.append(f)
    return out


def graph_seeds(seeds, target, side, events):
    """Seeds for the graph target whose port is `side`: each conversation's
    first frames in capture order, both directions (record flag 2 for the
    other port), fragments of one datagram together, and single frames of
    every shape received on `side`."""
    convs = {}
    frag_conv = {}
    for ev in events:
        k = conv_key(ev[1])
        if k is not None and k[0] == "frag":
            # Fragments go with the conversation of their first fragment.
            if k[2] is not None:
                frag_conv[k[1]] = ("frags", k[2])
            k = frag_conv.get(k[1], ("frags", k[1]))
        if k is not None:
            convs.setdefault(k, []).append(ev)
    flag = lambda s: 0 if s == side else 2
    # Replayed one frame a vector (flag 4), as the router saw them; and
    # split in two vectors, traced.
    def add(evs):
        seeds.add(target, [0, 0], [(flag(s) | 4, f) for s, f in evs])
        seeds.add(target, [8, 4], [(flag(s), f) for s, f in evs])

    # Conversations with fragments first: they are few.
    for k, evs in convs.items():
        if k[0] == "frags":
            if k[1] in convs:
                add(sorted(convs[k[1]][:6] + evs[:6], key=events.index))
            else:
                add(evs[:12])
    n = 0
    for k, evs in convs.items():
        if k[0] == "frags" or n >= 40:
            continue
        n += 1
        add(evs[:12])
    for f in pick([f for s, f in events if s == side], 2):
        seeds.add(target, [4, 0], [(0, f)])


def built_lan_frames():
    host6 = "2001:db8:0:111::10"
    host_ll = "fe80::ff:fe00:110"
    lan_ll = "fe80::ff:fe00:201"
    lan_gua = "2001:db8:0:111::1"
    fr = []
    # ARP for the router, and a gratuitous one.
    fr.append(arp(1, HOST_MAC, "192.168.2.10", bytes(6), "192.168.2.1"))
    fr.append(arp(2, HOST_MAC, "192.168.2.10", LAN_MAC, "192.168.2.1", LAN_MAC))
    # NDP and RS.
    fr.append(ns(HOST_MAC, host_ll, solicited_node(lan_gua), lan_gua))
    fr.append(ns(HOST_MAC, "::", solicited_node(host6), host6, lla=False))
    fr.append(na(HOST_MAC, host_ll, lan_ll, host_ll, 0x60, LAN_MAC))
    rs = icmp6(host_ll, "ff02::2", 133, 0, b"\0\0\0\0\x01\x01" + HOST_MAC)
    fr.append(eth(mcast_mac("ff02::2"), HOST_MAC, 0x86DD, rs))
    # Echo to the router, both families.
    fr.append(eth(LAN_MAC, HOST_MAC, 0x0800, icmp4("192.168.2.10", "192.168.2.1", 8, 0, b"\0\1\0\1ping")))
    fr.append(eth(LAN_MAC, HOST_MAC, 0x86DD, icmp6(host6, lan_gua, 128, 0, b"\0\1\0\1ping", 64)))
    # DHCPv4 discover, DHCPv6 information-request, DNS to the router.
    disc = dhcp4(1, HOST_MAC, options=[(55, bytes([1, 3, 6, 15, 26, 119]))])
    fr.append(eth(b"\xff" * 6, HOST_MAC, 0x0800, udp4("0.0.0.0", "255.255.255.255", 68, 67, disc)))
    info = b"\x0b\x12\x34\x56" + struct.pack("!HH", 1, 10) + bytes.fromhex("00030001020000000110")
    fr.append(eth(mcast_mac("ff02::1:2"), HOST_MAC, 0x86DD, udp6(host_ll, "ff02::1:2", 546, 547, info)))
    query = bytes.fromhex("abcd01000001000000000000") + b"\x04aftr\x03lab\x07example\x00\x00\x1c\x00\x01"
    fr.append(eth(LAN_MAC, HOST_MAC, 0x0800, udp4("192.168.2.10", "192.168.2.1", 5353, 53, query)))
    fr.append(eth(LAN_MAC, HOST_MAC, 0x86DD, udp6(host6, lan_gua, 5353, 53, query)))
    # Forwarding: IPv4 into the tunnel (TCP SYN, UDP, TTL 1), native IPv6.
    fr.append(eth(LAN_MAC, HOST_MAC, 0x0800, tcp4("192.168.2.10", "198.51.100.10", 40000, 80, 0x02)))
    fr.append(eth(LAN_MAC, HOST_MAC, 0x0800, udp4("192.168.2.10", "198.51.100.10", 40001, 7, b"x" * 1400)))
    ttl1 = bytearray(udp4("192.168.2.10", "198.51.100.10", 40002, 33434, b"trace"))
    ttl1[8] = 1
    ttl1[10:12] = b"\0\0"
    ttl1[10:12] = struct.pack("!H", csum(bytes(ttl1[:20])))
    fr.append(eth(LAN_MAC, HOST_MAC, 0x0800, bytes(ttl1)))
    fr.append(eth(LAN_MAC, HOST_MAC, 0x86DD, tcp6(host6, "2001:db8:ffff::10", 40003, 443, 0x02)))
    fr.append(eth(LAN_MAC, HOST_MAC, 0x86DD, udp6(host6, "2001:db8:ffff::10", 40004, 53, b"q" * 1452)))
    fr.append(eth(LAN_MAC, HOST_MAC, 0x86DD, udp6(host6, "2001:db8:ffff::10", 40005, 53, b"hop", hop=1)))
    # Unicast IP in link-layer broadcast and multicast frames (never
    # forwarded), and to a loopback and an IPv4-mapped destination.
    fr.append(eth(b"\xff" * 6, HOST_MAC, 0x0800, udp4("192.168.2.10", "198.51.100.10", 40006, 7, b"b")))
    fr.append(eth(mcast_mac("ff02::1"), HOST_MAC, 0x86DD, udp6(host6, "2001:db8:ffff::10", 40007, 53, b"m")))
    fr.append(eth(LAN_MAC, HOST_MAC, 0x86DD, udp6(host6, "::1", 40008, 53, b"l")))
    fr.append(eth(LAN_MAC, HOST_MAC, 0x86DD, udp6(host6, "::ffff:192.0.2.1", 40009, 53, b"v")))
    return fr


def aftr_reply(tos=0, size=64):
    """The IPv4 server's UDP reply to the LAN host, the LAN packet that
    opens its session, inside IPv4-in-IPv6 built by the callers."""
    body = b"r" * size
    inner = bytearray(udp4("198.51.100.10", "192.168.2.10", 7, 40010, body))
    inner[1] = tos
    inner[10:12] = b"\0\0"
    inner[10:12] = struct.pack("!H", csum(bytes(inner[:20])))
    opener = eth(LAN_MAC, HOST_MAC, 0x0800, udp4("192.168.2.10", "198.51.100.10", 40010, 7, b"o"))
    return bytes(inner), opener


def to_b4(payload, nh, src=None, tc=0):
    ip = bytearray(ipv6(str(src or AFTR), str(B4), nh, payload))
    ip[0] |= tc >> 4
    ip[1] |= (tc & 0x0F) << 4
    return eth(WAN_MAC, GW_MAC, 0x86DD, bytes(ip))


# Destination Options with RFC 2473's encapsulation limit (type 4, value 4)
# and a PadN, as Linux ip6tnl sends them; the first byte is Next Header.
ENCAP_LIMIT = bytes([0, 0, 4, 1, 4, 1, 1, 0])


def opts(nh, body=ENCAP_LIMIT):
    return bytes([nh]) + body[1:]


def frag_hdr(nh, off, more, ident):
    return struct.pack("!BBHI", nh, 0, off | int(more), ident)


def built_wan_conversations():
    """[(lan opener, [WAN frames])]: the AFTR's packets behind options
    headers (before and after the Fragment header), ECN marks, unknown
    options, and fragments to the B4 from another source (issue 15)."""
    conv = []
    inner, opener = aftr_reply()
    conv.append((opener, [to_b4(opts(4) + inner, 60)]))
    conv.append((opener, [to_b4(bytes([60, 0, 1, 4, 0, 0, 0, 0]) + opts(4) + inner, 0)]))
    for t in (0x1E, 0x5E, 0x9E, 0xDE):
        conv.append((opener, [to_b4(opts(4, bytes([0, 0, t, 4, 0, 0, 0, 0])) + inner, 60)]))
    for outer, tos in ((3, 2), (3, 0), (1, 2), (3, 1)):
        i, o = aftr_reply(tos)
        conv.append((o, [to_b4(i, 4, tc=0xB8 | outer)]))
    big, opener = aftr_reply(2, 1472)
    # Linux: Destination Options before the Fragment header; CE on one.
    f1 = opts(44) + frag_hdr(4, 0, True, 1) + big[:1440]
    f2 = opts(44) + frag_hdr(4, 1440, False, 1) + big[1440:]
    conv.append((opener, [to_b4(f1, 60), to_b4(f2, 60, tc=3)]))
    # RFC 8200 order: after it, so the datagram starts with them.
    whole = opts(4) + big
    g1 = frag_hdr(60, 0, True, 2) + whole[:1440]
    g2 = frag_hdr(60, 1440, False, 2) + whole[1440:]
    conv.append((opener, [to_b4(g2, 44), to_b4(g1, 44)]))
    # Fragments from another source than the AFTR, between the AFTR's.
    h1 = frag_hdr(4, 0, True, 3) + big[:1448]
    h2 = frag_hdr(4, 1448, False, 3) + big[1448:]
    alien = [to_b4(frag_hdr(4, 0, True, k) + big[:64], 44, src=f"2001:db8:bad::{k}") for k in range(1, 9)]
    conv.append((opener, [to_b4(h1, 44)] + alien + [to_b4(h2, 44)]))
    return conv


def dhcp4_seeds(seeds, captured):
    mac = HOST_MAC
    other = bytes.fromhex("02000000011a")
    srv = ip4b("192.168.2.1")
    req = ip4b("192.168.2.100")
    prl = (55, bytes([1, 3, 6, 15, 26, 28, 42, 119, 121]))
    discover = dhcp4(1, mac, options=[prl, (57, struct.pack("!H", 1500)), (61, b"\x01" + mac),
                                     (12, b"laptop")])
    request = dhcp4(3, mac, options=[prl, (50, req), (54, srv), (61, b"\x01" + mac), (12, b"laptop")])
    init_reboot = dhcp4(3, mac, options=[(50, req)])
    renew = dhcp4(3, mac, ciaddr="192.168.2.100")
    decline = dhcp4(4, mac, options=[(50, req), (54, srv)])
    release = dhcp4(7, mac, ciaddr="192.168.2.100", options=[(54, srv)])
    inform = dhcp4(8, mac, ciaddr="192.168.2.100", options=[prl])
    static = dhcp4(1, bytes.fromhex("020000000110"), flags=0x8000)
    wrong_net = dhcp4(3, other, options=[(50, ip4b("10.1.2.3"))])
    other_srv = dhcp4(3, other, options=[(50, req), (54, ip4b("192.168.2.2"))])
    # Option overload (52): options continue in file and sname.
    overload = dhcp4(1, other, options=[(52, b"\x03")], file=b"\x0c\x04name\xff",
                     sname=b"\x37\x02\x01\x03\xff")
    # RFC 3396: one option split in two.
    split = dhcp4(1, other, options=[(12, b"long"), (12, b"name"), prl])
    flag = 0x08  # Ethernet source = chaddr
    seqs = [
        [(flag, discover), (flag, request), (flag | 0x10, renew), (flag | 0x80, release)],
        [(flag, discover), (flag, request), (flag | 0x06, renew), (flag | 0x40, init_reboot)],
        [(flag, discover), (flag, request), (flag, decline), (flag | 0x04, discover)],
        [(flag, inform)],
        [(flag, static), (flag | 0x20, static)],
        [(flag, wrong_net), (flag, other_srv), (flag, overload), (flag, split)],
        [(flag, discover), (flag | 0x07, request), (flag | 0x10, discover)],
    ]
    for s in seqs:
        for header in (0, 1, 2 | 4):
            seeds.add("dhcp4_server", [header], s)
    for m in captured:
        seeds.add("dhcp4_server", [0], [(flag, m)])


def dhcp6_opt(code, data):
    return struct.pack("!HH", code, len(data)) + data


def dhcp6_seeds(seeds, captured):
    duid = bytes.fromhex("00030001020000000202")
    server = bytes.fromhex("0002000009bf6b65612d686777")

    def ia_pd(t1, t2, prefixes, status=None):
        body = struct.pack("!III", 0x202, t1, t2)
        for p, plen, pref, valid in prefixes:
            body += dhcp6_opt(26, struct.pack("!IIB", pref, valid, plen) + ip6b(p))
        if status is not None:
            body += dhcp6_opt(13, struct.pack("!H", status) + b"status")
        return dhcp6_opt(25, body)

    def msg(kind, *opts):
        return bytes([kind, 0, 0, 0]) + dhcp6_opt(1, duid) + dhcp6_opt(2, server) + b"".join(opts)

    good = ia_pd(1800, 2880, [("2001:db8:0:110::", 60, 3600, 7200)])
    extras = dhcp6_opt(23, ip6b("2001:db8:0:100::1")) + dhcp6_opt(
        24, b"\x03lab\x07example\x00") + dhcp6_opt(64, b"\x04aftr\x03lab\x07example\x00")
    built = [
        msg(2, dhcp6_opt(7, b"\xff"), good, extras),
        msg(7, good, extras),
        msg(7, dhcp6_opt(14, b""), good, extras),
        msg(7, ia_pd(0, 0, [], status=3)),  # NoBinding
        msg(7, ia_pd(0, 0, [], status=6)),  # NoPrefixAvail
        msg(7, ia_pd(1800, 2880, [("2001:db8:0:110::", 60, 0, 0), ("2001:db8:0:120::", 60, 3600, 7200)])),
        msg(7, ia_pd(0xFFFFFFFF, 0xFFFFFFFF, [("2001:db8:0:110::", 60, 0xFFFFFFFF, 0xFFFFFFFF)])),
        msg(7, dhcp6_opt(82, struct.pack("!I", 120)), good),
        msg(7, dhcp6_opt(13, struct.pack("!H", 2) + b"NoAddrsAvail")),
    ]
    for m in list(captured) + built:
        for state in range(8):
            seeds.add("dhcp6_client", [state | (0x10 if state == 7 else 0)], [(0, m)])
        # A Reply, then time to T1 and another Reply (the renewal).
        seeds.add("dhcp6_client", [3], [(0, m), (4 << 1, m), (6 << 1, m)])


def nd_seeds(seeds, captured):
    lan_ll = "fe80::ff:fe00:201"
    wan_ll = "fe80::ff:fe00:202"
    host_ll = "fe80::ff:fe00:110"
    recs = []
    for side, f in captured:
        recs.append((1 if side == "lan" else 0, f))
    wan = 0
    lan = 1
    built = [
        (wan, ra_frame()),
        (wan, ra_frame(lifetime=0, prefixes=(("2001:db8:0:100::", 64, 0xC0), ("2001:db8:1::", 64, 0x40)))),
        (wan, ns(GW_MAC, "fe80::1", solicited_node(wan_ll), wan_ll)),
        (wan, na(GW_MAC, "fe80::1", wan_ll, "fe80::1", 0xE0, WAN_MAC)),
        (wan, ns(GW_MAC, "::", solicited_node("2001:db8:0:100::2"), "2001:db8:0:100::2", lla=False)),
        (lan, arp(1, HOST_MAC, "192.168.2.10", bytes(6), "192.168.2.1")),
        (lan, arp(2, HOST_MAC, "192.168.2.10", LAN_MAC, "192.168.2.1", LAN_MAC)),
        (lan, arp(1, HOST_MAC, "0.0.0.0", bytes(6), "192.168.2.10")),
        (lan, ns(HOST_MAC, host_ll, solicited_node(lan_ll), lan_ll)),
        (lan, na(HOST_MAC, "2001:db8:0:111::10", "2001:db8:0:111::1", "2001:db8:0:111::10", 0x60, LAN_MAC)),
        (lan, eth(LAN_MAC, HOST_MAC, 0x0800, icmp4("192.168.2.10", "192.168.2.1", 8, 0, b"\0\1\0\1ping"))),
        (lan, eth(LAN_MAC, HOST_MAC, 0x86DD, icmp6("2001:db8:0:111::10", "2001:db8:0:111::1", 128, 0,
                                                   b"\0\1\0\1ping", 64))),
    ]
    recs += built
    for flags, f in recs:
        seeds.add("ra_ndp_arp", [8], [(flags, f)])
        seeds.add("ra_ndp_arp", [1], [(flags, f), (flags | (6 << 2), f)])
    # RA then its expiry; bare RA messages.
    seeds.add("ra_ndp_arp", [0], [(0, ra_frame()), (7 << 2, ra_frame(lifetime=0))])
    seeds.add("ra_ndp_arp", [0], [(0x20, ra_message()), (0x20 | (5 << 2), ra_message(mtu=1280))])
    for side, f in captured:
        p = parse(f)
        if p and p[2] == 58 and p[3][:1] == b"\x86":
            seeds.add("ra_ndp_arp", [0], [(0x20, p[3])])
    # Resolution: a held packet, then the answer.
    seeds.add("ra_ndp_arp", [8], [
        (0x40 | lan, arp(1, HOST_MAC, "192.168.2.10", bytes(6), "192.168.2.1")),
        (lan | (2 << 2), arp(2, HOST_MAC, "192.168.2.10", LAN_MAC, "192.168.2.1", LAN_MAC)),
    ])


# ------------------------------------------------------- LAN services, DNS


def service_messages(paths):
    """What LAN hosts and DNS servers sent, from every capture in order:
    DHCPv6 client messages (frame, payload), RS and RA frames, UDP DNS
    queries (frame, payload) and answers (frame, payload), and the bytes
    each side wrote on a TCP connection to port 53."""
    m = {"dhcp6": [], "rs": [], "ra": [], "query": [], "answer": [], "tcp_query": [], "tcp_answer": []}
    streams = {}
    for path in paths:
        try:
            frames = read_capture(path)
        except (OSError, ValueError, struct.error):
            continue
        for f in frames:
            p = parse(f)
            if not p:
                continue
            et, l3, nh, l4 = p
            if nh == 58 and l4[:1] == b"\x85":
                m["rs"].append(f)
            elif nh == 58 and l4[:1] == b"\x86":
                m["ra"].append(f)
            elif nh == 17 and len(l4) >= 8:
                sport, dport = struct.unpack("!HH", l4[:4])
                data = l4[8:]
                if dport == 547:
                    m["dhcp6"].append((f, data))
                elif dport == 53 and len(data) >= 12:
                    m["query"].append((et, f, data))
                elif sport == 53 and len(data) >= 12:
                    m["answer"].append((f, data))
            elif nh == 6 and len(l4) >= 20:
                sport, dport = struct.unpack("!HH", l4[:4])
                data = l4[(l4[12] >> 4) * 4 :]
                if data and 53 in (sport, dport):
                    key = (l3[8:24] if et == 0x86DD else l3[12:16], sport, dport)
                    streams.setdefault(key, b"")
                    streams[key] += data
    for (src, sport, dport), data in streams.items():
        if dport == 53:
            m["tcp_query"].append((len(src) == 16, data))
        else:
            m["tcp_answer"].append(data)
    return m


def dhcp6_options(payload):
    """[(code, body)] of a DHCPv6 message's top-level options."""
    out, at = [], 4
    while at + 4 <= len(payload):
        code, length = struct.unpack("!HH", payload[at : at + 4])
        out.append((code, payload[at + 4 : at + 4 + length]))
        at += 4 + length
    return out


def dhcp6_rewrite(payload, msg_type=None, server_id=None, drop=()):
    """The message with another type, its Server Identifier replaced (the
    capture's server is not the router) and options `drop` left out."""
    out = bytes([msg_type if msg_type is not None else payload[0]]) + payload[1:4]
    for code, body in dhcp6_options(payload):
        if code in drop:
            continue
        if code == 2 and server_id is not None:
            body = server_id
        out += dhcp6_opt(code, body)
    return out


# The router's DUID in the dhcp6_server target (ipoe_fuzz::dhcp6s::SERVER_DUID).
FUZZ_SERVER_DUID = bytes.fromhex("00030001020000000201")


def dhcp6_server_seeds(seeds, captured):
    """DHCPv6 client messages as real clients sent them (ISC dhclient from
    capture-lan-clients.sh, the router's own WAN client), the Server
    Identifier made the router's; and Renew / Decline made from a captured
    Request (its type changed) for the states only time would reach."""
    msgs = [dhcp6_rewrite(p, server_id=FUZZ_SERVER_DUID) for _, p in captured]
    by_type = {}
    for msg in msgs:
        by_type.setdefault(msg[0], []).append(msg)
    for msg in msgs:
        for header in (0, 1):
            seeds.add("dhcp6_server", [header], [(0, msg)])
    for f, p in captured[:8]:
        # The frame as sent, its message rewritten like the others.
        ip = parse(f)[1]
        src, dst = ipaddress.IPv6Address(ip[8:24]), ipaddress.IPv6Address(ip[24:40])
        msg = dhcp6_rewrite(p, server_id=FUZZ_SERVER_DUID)
        seeds.add("dhcp6_server", [1], [(0x20, eth(f[:6], f[6:12], 0x86DD, udp6(src, dst, 546, 547, msg)))])
    if msgs:
        for header in (1, 1 | 4, 1 | 8, 0, 1 | 2 | 16):
            seeds.add("dhcp6_server", [header], [(1, m) for m in msgs[:31]] + [(0x40, msgs[0])])
    requests = by_type.get(3, [])
    solicits = by_type.get(1, [])
    if requests:
        req = requests[0]
        renew = dhcp6_rewrite(req, msg_type=5)
        rebind = dhcp6_rewrite(req, msg_type=6, drop=(2,))
        decline = dhcp6_rewrite(req, msg_type=9)
        release = dhcp6_rewrite(req, msg_type=8)
        sol = solicits[0] if solicits else req
        # Bound, then renewed an hour later, rebound a day later, renumbered
        # (the old address back with lifetime 0), restarted, declined.
        seeds.add("dhcp6_server", [1], [(0, sol), (1, req), (5, renew), (6, rebind), (0x40, renew),
                                        (0x80 | 1, renew), (1, decline), (1, sol), (7, release)])
        seeds.add("dhcp6_server", [1 | 8], [(0, sol), (1, req), (5, renew), (5, renew)])
        # Two clients from other sources, and a full table.
        seeds.add("dhcp6_server", [1 | 4], [(0, sol), (1, req), (0x08, sol), (0x09, req),
                                            (0x10, sol), (0x11, req), (0x80, renew)])


def lan_ra_seeds(seeds, rs_frames, ra_frames):
    """Router Solicitations as the Linux kernel and rdisc6 send them (bare,
    from their source and hop limit, and as frames), other routers' RAs,
    and the WAN side's changes (ipoe_fuzz::lan_ra::inputs)."""
    def inputs(flags, prefix="2001:db8:0:111::", pref=3600, valid=7200, dns=(), domains=b""):
        b = bytes([flags]) + ip6b(prefix) + struct.pack("!HH", pref, valid)
        b += bytes([len(dns)]) + b"".join(ip6b(a) for a in dns)
        return b + domains
    renumber = inputs(0x0F, "2001:db8:0:121::", dns=("2001:db8:0:121::1",), domains=b"lab.example,home.arpa")
    gone = inputs(0x02)
    no_router = inputs(0x0D, dns=("2001:db8:0:111::1",))
    lab = inputs(0x0F, dns=("2001:db8:0:111::1",), domains=b"lab.example")
    junk = inputs(0x07, "ff02::1", 0, 0, ("::", "::1", "ff02::1", "2001:db8::1", "2001:db8::1"),
                  b"bad domain!,," + b"x" * 70 + b".example")
    rs_msgs = []
    for f in rs_frames:
        p = parse(f)
        msg = p[3]
        if msg not in rs_msgs:
            rs_msgs.append(msg)
            src = p[1][8:24]
            hop = p[1][7]
            for header in (0, 4, 8 | 4):
                seeds.add("lan_ra", [header], [(0, msg), (3, msg)])
            seeds.add("lan_ra", [0], [(0x08, src + bytes([hop]) + msg)])
            seeds.add("lan_ra", [0x10 | 4], [(0x10, f), (2, f)])
    rs = rs_msgs[0] if rs_msgs else b"\x85\0\0\0\0\0\0\0"
    for f in ra_frames[:4]:
        seeds.add("lan_ra", [0], [(0x10, f), (5, f), (0x10 | 1, rs)])
    seeds.add("lan_ra", [4], [(0x18, renumber), (3, rs), (6, rs), (0x18 | 3, gone), (0x18 | 3, lab),
                              (7, rs)])
    seeds.add("lan_ra", [0x10], [(0x18, lab), (3, rs), (0x40 | 3, rs), (0x18 | 2, renumber)])
    seeds.add("lan_ra", [4 | 0x20], [(0x18, no_router), (0x20 | 3, rs), (0x80 | 1, rs), (0x80 | 3, rs)])
    seeds.add("lan_ra", [8 | 1 | 2 | 0x60], [(0x80, rs), (0x18 | 2, junk), (3, rs)])
    seeds.add("lan_ra", [0x80 | 4], [(0, rs), (0x18 | 3, renumber), (0x40 | 6, rs)])


# dnsmasq 2.90's replies as proto/src/dns/tests.rs captured them:
# (name index in ipoe_fuzz::resolver::NAMES or None, reply).
DNSMASQ_REPLIES = [
    (0, "1234858000010001000000010461667472036c6162076578616d706c6500001c0001c00c001c00010000025800"
        "1020010db8aaaa0000000000000000000100002904d0000000000000"),
    (1, "234585800001000200000001026777036c6162076578616d706c6500001c0001c00c00050001000002580012"
        "0461667472036c6162076578616d706c6500c02c001c000100000258001020010db8aaaa0000000000000000"
        "000100002904d0000000000000"),
    (2, "567885800001000200000001024757034c6162074578616d706c6500001c0001c00c00050001000002580012"
        "0461667472036c6162076578616d706c6500c02c001c000100000258001020010db8aaaa0000000000000000"
        "000100002904d0000000000000"),
    (None, "345681830001000000000001046e6f7065036c6162076578616d706c6500001c000100002904d0000000000000"),
    (None, "456785800001000200000001056d756c7469036c6162076578616d706c6500001c0001c00c001c0001000002"
           "58001020010db8aaaa000000000000000000000002c00c001c000100000258001020010db8aaaa0000000000"
           "0000000000000300002904d0000000000000"),
    (None, "678981850001000000000001076578616d706c6503636f6d00001c000100002904d0000000000006000f0002000e"),
]


def question_end(msg):
    """Offset just past the (uncompressed) question of a DNS message."""
    at = 12
    while at < len(msg) and msg[at] != 0:
        at += 1 + msg[at]
    return at + 5


def spliced(msg):
    """A reply without its question, for targets that put the question of
    their own query back in (record flag 'question spliced')."""
    return msg[:12] + msg[question_end(msg) :]


def resolver_seeds(seeds, answers):
    """AAAA answers from dnsmasq: captured on the lab's WAN and in the
    resolver's tests; as they are when they answer the name asked, else
    with the question spliced from the query."""
    aaaa = [(f, a) for f, a in answers if a[question_end(a) - 4 : question_end(a) - 2] == b"\x00\x1c"]
    for f, a in aaaa:
        name = a[12 : question_end(a) - 4]
        header = 0 if name == b"\x04aftr\x03lab\x07example\x00" else None
        if header is not None:
            seeds.add("aftr_resolver", [header], [(0, a), (7, a), (0x80, a)])
            seeds.add("aftr_resolver", [header], [(0x40, f)])
            seeds.add("aftr_resolver", [header | 0x10 | 4], [(1, a), (3, a), (5, a)])
        seeds.add("aftr_resolver", [1], [(0x10, spliced(a))])
    for name, hexed in DNSMASQ_REPLIES:
        a = bytes.fromhex(hexed)
        if name is not None:
            seeds.add("aftr_resolver", [name], [(0, a), (0x20, a), (6, a)])
        for header in (0, 1 | 4):
            seeds.add("aftr_resolver", [header], [(0x10, spliced(a)), (3, a)])


def dns_proxy_seeds(seeds, queries, answers, tcp_queries, tcp_answers):
    """Queries as dig sent them to the router over UDP and TCP (captured
    on the lab's LAN), answered by what dnsmasq answered (the question
    spliced from the forward): cache hits, expiry, timeouts, TCP."""
    spl = [spliced(a) for _, a in answers]
    for k, (et, f, q) in enumerate(queries):
        kind = 0 if et == 0x0800 else 1
        ans = spl[k % len(spl)] if spl else b""
        q_rec = (kind << 3, q)
        ans_rec = (2 << 3 | 0x40, ans)
        for header in (0, 1, 4 | 8):
            seeds.add("dns_proxy", [header], [q_rec, ans_rec, q_rec, (7, q), ans_rec])
        # Unanswered: retries to the second server, then SERVFAIL.
        two = bytes([3]) + ip6b("2001:db8:0:100::1") + ip6b("2001:db8:0:100::53")
        seeds.add("dns_proxy", [0x40], [(7 << 3, two), q_rec, (3, q), (3, q), (3, q)])
        seeds.add("dns_proxy", [0], [(4 << 3, f), ans_rec])
    for f, a in answers:
        if f[12:14] == b"\x86\xdd" and queries:
            kind = 1 if queries[0][0] == 0x86DD else 0
            seeds.add("dns_proxy", [0], [(kind << 3, queries[0][2]), (5 << 3 | 0x40, f)])
    for v6, data in tcp_queries:
        ans = spl[0] if spl else b""
        tcp = 6 << 3 | (0x40 if v6 else 0)
        seeds.add("dns_proxy", [0], [(tcp, data), (2 << 3 | 0x40, ans), (7 << 3, b"\0")])
        # Two queries on one connection, one slot: the second connection
        # is refused until the idle timeout frees the slot.
        seeds.add("dns_proxy", [0x20 | 1], [(tcp, data), (2 << 3 | 0x40, ans), (tcp, data),
                                            (7 << 3, b"\x02"), (tcp, data), (5, b""),
                                            (tcp, data), (2 << 3 | 0x40, ans)])
    for data in tcp_answers:
        if len(data) > 2 and queries:
            seeds.add("dns_proxy", [0], [(0, queries[0][2]), (2 << 3 | 0x40, spliced(data[2:]))])


def service_seeds(seeds, paths):
    m = service_messages(paths)
    print(
        f"seeds.py: DHCPv6 client messages {len(m['dhcp6'])}, RS {len(m['rs'])}, RA {len(m['ra'])}, "
        f"DNS queries {len(m['query'])}, answers {len(m['answer'])}, TCP streams "
        f"{len(m['tcp_query'])}/{len(m['tcp_answer'])}",
        file=sys.stderr,
    )
    dhcp6_server_seeds(seeds, m["dhcp6"])
    lan_ra_seeds(seeds, m["rs"], m["ra"])
    resolver_seeds(seeds, m["answer"])
    dns_proxy_seeds(seeds, m["query"], m["answer"], m["tcp_query"], m["tcp_answer"])


BROKEN_CONFIGS = {
    "broken-empty.yaml": "",
    "broken-tabs.yaml": "wan:\n\tinterface: wan0\n",
    "broken-same-iface.yaml": "wan:\n  interface: eth0\nlan:\n  interface: eth0\n  ipv4: 192.168.1.1/24\n",
    "broken-bad-prefix.yaml": (
        "wan:\n  interface: wan0\nlan:\n  interface: lan0\n  ipv4: 192.168.1.1/33\n"
        "  ipv6:\n    prefix: 2001:db8::/48\n"
    ),
    "broken-unknown-key.yaml": "wan:\n  interface: wan0\n  colour: blue\nlan:\n  interface: lan0\n",
    "broken-anchor.yaml": "a: &x [*x]\nwan: *x\n",
    "broken-types.yaml": "wan: [1, 2]\nlan: {interface: 7, ipv4: yes}\ndataplane: {workers: -1}\n",
    "broken-unicode.yaml": "wan:\n  interface: \"w\u00e4n\u200b0\"\nlan:\n  interface: l\u00e1n0\n",
}

CTL_LINES = [
    '{"version":1,"command":"version"}',
    '{"version":1,"command":"show interfaces"}',
    '{"version":1,"command":"show sessions","args":{"limit":10,"proto":"tcp"}}',
    '{"version":1,"command":"trace add","args":{"count":10,"rx":"wan"}}',
    '{"version":1,"command":"trace add","args":{"count":0,"rx":"dmz"}}',
    '{"version":1,"command":"pd renew"}',
    '{"version":2,"command":"version"}',
    '{"command":"version"}',
    '{"version":1}',
    '{"version":1,"command":"\\u0000\\ud83d\\ude00"}',
    "[1,2,3]",
    '{"version":1e0,"command":"x"}',
    '{"version":1,"command":"reload","args":[{"a":{"b":[[[[]]]]}}]}',
    "{",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("captures", nargs="*", help="pcap/pcapng files (default /run/ipoe-lab/*.pcap*)")
    ap.add_argument("--out", default=os.path.join(HERE, "seeds"))
    ap.add_argument("--max-per-target", type=int, default=120)
    ap.add_argument("--targets", default="", help="comma-separated targets to write (default all)")
    args = ap.parse_args()
    paths = args.captures or sorted(glob.glob("/run/ipoe-lab/*.pcap*"))
    seeds = Seeds(args.out, args.max_per_target, set(filter(None, args.targets.split(","))))

    events, dhcp6_replies, dhcp4_msgs, nd_frames = capture_seeds(paths)
    wan_in = sum(1 for s, _ in events if s == "wan")
    lan_in = len(events) - wan_in
    print(
        f"seeds.py: WAN ingress {wan_in}, LAN ingress {lan_in} (rebuilt or captured), "
        f"DHCPv6 replies {len(dhcp6_replies)}, DHCPv4 {len(dhcp4_msgs)}, ND/ARP {len(nd_frames)}",
        file=sys.stderr,
    )
    graph_seeds(seeds, "graph_wan", "wan", events)
    for opener, frames in built_wan_conversations():
        seeds.add("graph_wan", [0, 0], [(2, opener)] + [(0, f) for f in frames])
    built = built_lan_frames()
    for f in built:
        seeds.add("graph_lan", [0, 0], [(0, f)])
    seeds.add("graph_lan", [8, 0], [(0, f) for f in built])
    graph_seeds(seeds, "graph_lan", "lan", events)
    dhcp4_seeds(seeds, dhcp4_msgs)
    dhcp6_seeds(seeds, dhcp6_replies)
    nd_seeds(seeds, nd_frames)
    service_seeds(seeds, paths)

    for path in sorted(glob.glob(os.path.join(ROOT, "config", "examples", "*.yaml"))):
        with open(path, "rb") as f:
            seeds.add_raw("config", os.path.basename(path), f.read())
    for name, text in BROKEN_CONFIGS.items():
        seeds.add_raw("config", name, text.encode())
    for i, line in enumerate(CTL_LINES):
        seeds.add_raw("ctl_request", f"line-{i:02}", line.encode())

    total = 0
    for target in sorted(seeds.count):
        d = os.path.join(args.out, target)
        size = sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d))
        total += size
        print(f"seeds.py: {target}: {len(os.listdir(d))} files, {size} bytes", file=sys.stderr)
    print(f"seeds.py: {total} bytes in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
