"""tunlib.py - what the lab's softwire emulators (aftr.py, br.py) share.

Both terminate an IPv4-in-IPv6 softwire in userspace the same way (a raw
AF_INET6 socket with protocol 4 and a TUN device) and check the inner IPv4
packets the same way.  Nothing here comes from ipoed: the emulators stay the
independent check of it.  Standard library only; imported from the
emulators' own directory (Python puts a script's directory on sys.path).
"""

import array
import fcntl
import json
import os
import socket
import struct
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCSIFMTU = 0x8922
IFF_UP = 0x1
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
IPV6_RECVDSTOPTS = getattr(socket, "IPV6_RECVDSTOPTS", 58)
IPV6_DSTOPTS = getattr(socket, "IPV6_DSTOPTS", 59)

IPPROTO_IPIP = 4
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17


class Shutdown(Exception):
    pass


def on_signal(signum, _frame):
    raise Shutdown(signum)


def csum_ok(data):
    """True if the 16-bit ones'-complement sum of data is 0xffff.

    The ones'-complement sum is byte-order independent (RFC 1071), so summing
    native-endian 16-bit words with array('H') is correct for a *check*.
    """
    if len(data) & 1:
        data = data + b"\0"
    s = sum(array.array("H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def ifreq(name, fmt="H", *vals):
    return struct.pack("16s" + fmt, name.encode(), *vals).ljust(40, b"\0")


def open_tun(name, mtu):
    """Create and bring up a non-blocking IPv4-only TUN (IFF_TUN|IFF_NO_PI)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    fcntl.ioctl(fd, TUNSETIFF, ifreq(name, "H", IFF_TUN | IFF_NO_PI))
    # IPv4 only on the tun: no link-local, no RS/MLD noise read back from it.
    try:
        with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
            f.write("1")
    except OSError:
        pass
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        fcntl.ioctl(s, SIOCSIFMTU, ifreq(name, "i", mtu))
        flags = struct.unpack_from("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq(name, "H", 0)))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, ifreq(name, "H", flags | IFF_UP))
    finally:
        s.close()
    return fd


def force_bufs(sock, size=4 << 20):
    """Large socket buffers so bursts wait instead of being dropped (best effort)."""
    for opt in (SO_RCVBUFFORCE, SO_SNDBUFFORCE):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, size)
        except OSError:
            pass


def parse_cmsgs(anc):
    """(destination, hop limit, traffic class, [Destination Options]) from
    recvmsg() ancillary data of the raw socket; None where absent."""
    dst, hlim, tclass, dstopts = None, None, None, []
    for level, typ, data in anc:
        if level != socket.IPPROTO_IPV6:
            continue
        if typ == socket.IPV6_PKTINFO and len(data) >= 16:
            dst = data[:16]
        elif typ == socket.IPV6_HOPLIMIT and len(data) >= 4:
            hlim = struct.unpack("i", data[:4])[0]
        elif typ == socket.IPV6_TCLASS and len(data) >= 4:
            tclass = struct.unpack("i", data[:4])[0]
        elif typ == IPV6_DSTOPTS:
            dstopts.append(data)
    return dst, hlim, tclass, dstopts


def validate_ipv4(pkt):
    """Return an error name, or None if the inner IPv4 packet is well formed.

    Fragments pass once their IPv4 header is checked: without reassembly
    their L4 checksum cannot be verified.
    """
    n = len(pkt)
    if n < 20:
        return "short-packet"
    ver, ihl = pkt[0] >> 4, (pkt[0] & 0x0F) * 4
    if ver != 4:
        return "bad-version"
    if ihl < 20:
        return "bad-ihl"
    if n < ihl:
        return "short-packet"
    if struct.unpack_from("!H", pkt, 2)[0] != n:
        return "bad-total-length"
    if not csum_ok(pkt[:ihl]):
        return "bad-ip-checksum"
    if pkt[8] == 0:
        return "ttl-zero"
    if is_fragment(pkt):
        return None
    proto, l4 = pkt[9], pkt[ihl:]
    if proto in (IPPROTO_TCP, IPPROTO_UDP):
        if len(l4) < (20 if proto == IPPROTO_TCP else 8):
            return "short-l4"
        if proto == IPPROTO_UDP and l4[6:8] == b"\0\0":
            return None  # UDP over IPv4 may omit the checksum
        pseudo = pkt[12:20] + struct.pack("!BBH", 0, proto, len(l4))
        if not csum_ok(pseudo + l4):
            return "bad-tcp-checksum" if proto == IPPROTO_TCP else "bad-udp-checksum"
    elif proto == IPPROTO_ICMP:
        if len(l4) < 8:
            return "short-l4"
        if not csum_ok(l4):
            return "bad-icmp-checksum"
    return None


def is_fragment(pkt):
    """MF set or offset != 0."""
    return bool(struct.unpack_from("!H", pkt, 6)[0] & 0x3FFF)


def write_json_atomic(path, d):
    """Replace the stats file at once: a reader never sees half of it."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(d, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def has_encap_limit(opts):
    """Whether a Destination Options header holds option type 4 (RFC 2473)."""
    i = 2
    while i < len(opts):
        t = opts[i]
        if t == 0:          # Pad1
            i += 1
            continue
        if i + 1 >= len(opts):
            return False
        if t == 4:
            return True
        i += 2 + opts[i + 1]
    return False


class Tallies:
    """Named violation and error counts for an emulator's stats file, logged
    the first 100 times each and then every 1000th. The emulator sets
    `logf`, `violations`, `errors` (Counters), `err_logged` and `dirty`."""

    def log(self, msg):
        if self.logf:
            self.logf.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}\n")

    def count(self, table, name, detail):
        table[name] += 1
        self.dirty = True
        n = self.err_logged[name] = self.err_logged[name] + 1
        if n <= 100 or n % 1000 == 0:
            kind = "violation" if table is self.violations else "error"
            self.log(f"{kind} {name} count={table[name]} {detail}")

    def violation(self, name, detail=""):
        self.count(self.violations, name, detail)

    def error(self, name, detail=""):
        self.count(self.errors, name, detail)
