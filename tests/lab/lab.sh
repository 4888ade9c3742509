#!/usr/bin/env bash
# lab.sh - network-namespace test lab for ipoe-router (ipoed).
#
#   lab.sh up [--queues N]   build the lab (tears down leftovers first)
#   lab.sh down              stop everything and delete the namespaces
#   lab.sh status            namespaces, links, processes, aftr stats
#   lab.sh selftest          prove the lab works WITHOUT ipoed (kernel router +
#                            b4ref.py in the router namespace), then rebuild
#
# Topology (see README.md):
#   lan1 [eth0] -- [lan0] router [wan0] -- [down0] hgw [core0] -- [up0] aftr [out0] -- [v4] inet
#                                                  hgw [inet0] ------------------------ [v6] inet
#
# Run dir (pids, logs, stats, www): $IPOE_LAB_DIR (default /run/ipoe-lab).
# Only documentation prefixes are used and no route leads out of the namespaces.
set -Eeuo pipefail

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUN=${IPOE_LAB_DIR:-/run/ipoe-lab}
case $RUN in /*) ;; *) RUN=$PWD/$RUN ;; esac
PIDS=$RUN/pids

NAMESPACES=(lan1 router hgw aftr inet)
# interface names that must never be left behind in the root namespace
# (only deleted there if they are veths; the lab never creates them there)
LAB_IFNAMES=(lan0 wan0 down0 core0 inet0 up0 out0 v4 v6)

# addresses (documentation prefixes only)
AFTR_ADDR=2001:db8:aaaa::1
B4_ADDR=2001:db8:0:100::2          # router WAN address (selftest only)
V4_SERVER=198.51.100.10
V6_SERVER=2001:db8:ffff::10

say()  { printf 'lab: %s\n' "$*"; }
warn() { printf 'lab: %s\n' "$*" >&2; }
die()  { printf 'lab: ERROR: %s\n' "$*" >&2; exit 1; }
nsx()  { local ns=$1; shift; ip netns exec "$ns" "$@"; }
sysctl_ns() { local ns=$1; shift; for kv in "$@"; do nsx "$ns" sysctl -qw "$kv" >/dev/null; done; }

on_err() {
    local rc=$? line=$1 cmd=$2
    warn "failed (rc=$rc) at line $line: $cmd"
    warn "the lab may be half-built; 'lab.sh down' cleans up, 'lab.sh up' rebuilds"
}

# --------------------------------------------------------------- prerequisites
check_prereqs() {
    local missing=()
    [[ $(id -u) -eq 0 ]] || missing+=("root privileges (run as root)")
    local c
    for c in ip nft python3 ethtool socat ss setsid curl sha256sum ping mount; do
        command -v "$c" >/dev/null 2>&1 || missing+=("command '$c'")
    done
    if command -v ip >/dev/null 2>&1 && ! ip netns list >/dev/null 2>&1; then
        missing+=("working 'ip netns' (network namespaces)")
    fi
    [[ -c /dev/net/tun ]] || missing+=("/dev/net/tun (CONFIG_TUN)")
    [[ -e /sys/kernel/btf/vmlinux ]] || missing+=("/sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF, needed by ipoed)")
    if command -v python3 >/dev/null 2>&1 &&
        ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 8))'; then
        missing+=("python3 >= 3.8")
    fi
    if ((${#missing[@]})); then
        warn "missing prerequisites:"
        printf '  - %s\n' "${missing[@]}" >&2
        exit 1
    fi
    if [[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null || true) != bpf_fs ]]; then
        say "bpffs not mounted at /sys/fs/bpf: mounting it"
        mkdir -p /sys/fs/bpf
        mount -t bpf bpf /sys/fs/bpf || die "cannot mount bpffs at /sys/fs/bpf"
    fi
}

# --------------------------------------------------------------- processes
# start_bg NAME NS KEYWORD CMD...: start CMD in namespace NS, detached, stdout+stderr
# to $RUN/NAME.out (unless redirected by caller's args), pid in $PIDS/NAME.pid.
# KEYWORD must appear in the process command line (guards against pid reuse).
start_bg() {
    local name=$1 ns=$2 kw=$3; shift 3
    ip netns exec "$ns" setsid "$@" </dev/null >>"$RUN/$name.out" 2>&1 &
    printf '%s %s\n' "$!" "$kw" >"$PIDS/$name.pid"
}

proc_running() { # PID -> 0 if it exists and is not a zombie (init may reap late)
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

pid_alive() { # NAME -> 0 if the recorded process is alive and is ours
    local f=$PIDS/$1.pid pid kw
    [[ -f $f ]] || return 1
    read -r pid kw <"$f" || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$kw"
}

stop_pidfile() { # NAME
    local f=$PIDS/$1.pid pid kw i
    [[ -f $f ]] || return 0
    if pid_alive "$1"; then
        read -r pid kw <"$f"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 30); do proc_running "$pid" || break; sleep 0.1; done
        if proc_running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$f"
}

ns_exists() { [[ -e /run/netns/$1 ]] || ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }

# --------------------------------------------------------------- down
cmd_down() {
    local quiet=${1:-} ns f pids i
    if [[ -d $PIDS ]]; then
        for f in "$PIDS"/*.pid; do
            [[ -e $f ]] || continue
            stop_pidfile "$(basename "$f" .pid)"
        done
    fi
    for ns in "${NAMESPACES[@]}"; do
        ns_exists "$ns" || continue
        for i in 1 2 3 4 5 6 7 8 9 10; do
            pids=$(ip netns pids "$ns" 2>/dev/null || true)
            [[ -n $pids ]] || break
            if ((i < 6)); then
                echo "$pids" | xargs -r kill -TERM 2>/dev/null || true
            else
                echo "$pids" | xargs -r kill -KILL 2>/dev/null || true
            fi
            sleep 0.2
        done
        ip netns del "$ns" 2>/dev/null || true
    done
    # belt and braces: the lab only creates links inside namespaces, but make
    # sure nothing of ours is left in the root namespace
    local ifn info
    for ifn in "${LAB_IFNAMES[@]}"; do
        info=$(ip -d link show dev "$ifn" 2>/dev/null || true)
        if grep -qw veth <<<"$info"; then
            ip link del dev "$ifn" 2>/dev/null || true
        fi
    done
    [[ -n $quiet ]] || say "down: namespaces ${NAMESPACES[*]} removed, processes stopped"
}

# --------------------------------------------------------------- up
# veth NS_A IF_A MAC_A NS_B IF_B MAC_B QUEUES
veth() {
    local q=(numtxqueues "$7" numrxqueues "$7")
    ip -n "$1" link add "$2" address "$3" "${q[@]}" mtu 1500 type veth \
        peer name "$5" address "$6" "${q[@]}" mtu 1500 netns "$4"
}

cmd_up() {
    local queues=1
    while (($#)); do
        case $1 in
            --queues) queues=${2:-}; shift 2 || die "--queues needs a value" ;;
            --queues=*) queues=${1#*=}; shift ;;
            *) die "up: unknown option '$1'" ;;
        esac
    done
    [[ $queues =~ ^[0-9]+$ ]] && ((queues >= 1 && queues <= 64)) || die "--queues must be 1..64"

    check_prereqs
    cmd_down quiet
    mkdir -p "$RUN" "$PIDS"
    rm -f "$RUN"/*.out "$RUN"/*.log "$RUN"/aftr-stats.json "$RUN"/aftr-stats.json.tmp
    echo "$queues" >"$RUN/queues"

    local ns
    for ns in "${NAMESPACES[@]}"; do
        ip netns add "$ns"
        nsx "$ns" ip link set lo up
        # static addresses only: no DAD delays anywhere
        sysctl_ns "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    done

    # ---- links (created directly inside the namespaces; nothing in the root ns)
    veth lan1 eth0 02:00:00:00:01:10  router lan0 02:00:00:00:02:01 "$queues"
    veth router wan0 02:00:00:00:02:02 hgw down0 02:00:00:00:03:01 "$queues"
    veth hgw core0 02:00:00:00:03:02  aftr up0 02:00:00:00:04:01 1
    veth hgw inet0 02:00:00:00:03:03  inet v6 02:00:00:00:05:02 1
    veth aftr out0 02:00:00:00:04:02  inet v4 02:00:00:00:05:01 1

    # ---- router: up, but no kernel addresses at all (ipoed owns ARP/NDP)
    local ifn
    for ifn in lan0 wan0; do
        nsx router ip link set dev "$ifn" addrgenmode none
        nsx router ethtool -K "$ifn" gro off >/dev/null
        nsx router ip link set dev "$ifn" up
    done

    # ---- lan1: LAN host
    nsx lan1 ethtool -K eth0 tx off tso off gso off gro off >/dev/null
    nsx lan1 ip link set eth0 up
    nsx lan1 ip addr add 192.168.2.10/24 dev eth0
    nsx lan1 ip -6 addr add 2001:db8:0:111::10/64 dev eth0 nodad
    nsx lan1 ip route add default via 192.168.2.1 dev eth0
    nsx lan1 ip -6 route add default via 2001:db8:0:111::1 dev eth0

    # ---- hgw: emulated NTT home gateway, plain IPv6 router
    nsx hgw ethtool -K down0 tx off tso off gso off gro off >/dev/null
    nsx hgw ip link set dev down0 addrgenmode none   # its only link-local is fe80::1
    for ifn in down0 core0 inet0; do nsx hgw ip link set "$ifn" up; done
    nsx hgw ip -6 addr add fe80::1/64 dev down0 nodad
    nsx hgw ip -6 addr add 2001:db8:0:100::1/64 dev down0 nodad
    nsx hgw ip -6 addr add 2001:db8:1::1/64 dev core0 nodad
    nsx hgw ip -6 addr add 2001:db8:ffff::1/64 dev inet0 nodad
    nsx hgw ip -6 route add 2001:db8:0:111::/64 via 2001:db8:0:100::2 dev down0
    nsx hgw ip -6 route add 2001:db8:aaaa::/64 via 2001:db8:1::2 dev core0
    sysctl_ns hgw net.ipv6.conf.all.forwarding=1

    # ---- aftr
    for ifn in up0 out0; do nsx aftr ip link set "$ifn" up; done
    nsx aftr ip -6 addr add 2001:db8:1::2/64 dev up0 nodad
    nsx aftr ip -6 addr add "$AFTR_ADDR"/128 dev lo
    nsx aftr ip -6 route add default via 2001:db8:1::1 dev up0
    nsx aftr ip addr add 203.0.113.1/24 dev out0
    nsx aftr ip route add 198.51.100.0/24 via 203.0.113.2 dev out0
    sysctl_ns aftr net.ipv4.ip_forward=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
        net.ipv4.conf.out0.rp_filter=0 net.ipv4.conf.lo.rp_filter=0
    nsx aftr nft -f - <<'EOF'
table ip ipoe_lab {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        iifname "tun0" oifname "out0" counter masquerade
    }
}
EOF

    # ---- inet: IPv4 and IPv6 servers
    for ifn in v4 v6; do nsx inet ip link set "$ifn" up; done
    nsx inet ip addr add 203.0.113.2/24 dev v4
    nsx inet ip addr add "$V4_SERVER"/24 dev v4
    nsx inet ip route add default via 203.0.113.1 dev v4
    nsx inet ip -6 addr add "$V6_SERVER"/64 dev v6 nodad
    nsx inet ip -6 route add default via 2001:db8:ffff::1 dev v6

    # ---- content served by inet
    rm -rf "$RUN/www"
    mkdir -p "$RUN/www"
    printf 'hello from inet\n' >"$RUN/www/hello.txt"
    python3 -c 'import random,sys; sys.stdout.buffer.write(random.Random(20240601).randbytes(1 << 20))' \
        >"$RUN/www/blob.bin"
    (cd "$RUN/www" && sha256sum blob.bin >blob.bin.sha256)

    # ---- processes
    start_bg aftr aftr aftr.py python3 -u "$LAB_SRC/aftr.py" --aftr "$AFTR_ADDR" --tun tun0 \
        --mtu 1460 --route 192.168.0.0/16 --stats "$RUN/aftr-stats.json" --log "$RUN/aftr.log"
    ip netns exec inet setsid python3 -u -m http.server --bind :: --directory "$RUN/www" 80 \
        </dev/null >>"$RUN/http-access.log" 2>&1 &
    printf '%s %s\n' "$!" http.server >"$PIDS/http.pid"
    # UDP echo: one socat per address so replies leave from the address the
    # request was sent to (a wildcard socket would answer 198.51.100.10 from 203.0.113.2)
    local a
    for a in "$V4_SERVER" 203.0.113.2; do
        start_bg "udp-echo-$a" inet socat socat -T 2 "UDP4-RECVFROM:7,bind=$a,reuseaddr,fork" PIPE
    done
    start_bg "udp-echo-$V6_SERVER" inet socat socat -T 2 "UDP6-RECVFROM:7,bind=[$V6_SERVER],reuseaddr,fork" PIPE

    # ---- wait until everything listens
    local ok=0 i
    for i in $(seq 100); do
        if [[ -s $RUN/aftr-stats.json ]] && nsx aftr ip link show tun0 >/dev/null 2>&1 &&
            [[ -n $(nsx inet ss -Hltn 'sport = :80') ]] &&
            (($(nsx inet ss -Hlun 'sport = :7' | wc -l) >= 3)); then
            ok=1; break
        fi
        sleep 0.1
    done
    if ((!ok)); then
        warn "servers did not come up in 10 s; logs:"
        tail -n 20 "$RUN"/*.out "$RUN"/http-access.log >&2 || true
        exit 1
    fi
    cat <<EOF
lab: up (queues=$queues, run dir $RUN)
  namespaces : ${NAMESPACES[*]}
  lan1       : eth0 192.168.2.10/24 gw 192.168.2.1, 2001:db8:0:111::10/64 gw 2001:db8:0:111::1
  router     : lan0 02:00:00:00:02:01, wan0 02:00:00:00:02:02 (up, no addresses; start ipoed here)
  hgw        : down0 fe80::1 / 2001:db8:0:100::1/64, core0 2001:db8:1::1, inet0 2001:db8:ffff::1
  aftr       : $AFTR_ADDR (aftr.py pid $(cut -d' ' -f1 "$PIDS/aftr.pid")), NAT to 203.0.113.1 on out0
  inet       : http://$V4_SERVER/ http://[$V6_SERVER]/ (hello.txt, blob.bin), udp echo :7
  logs       : $RUN/{aftr.log,aftr-stats.json,http-access.log,*.out}
EOF
}

# --------------------------------------------------------------- status
cmd_status() {
    local ns f name any=0
    say "run dir: $RUN"
    for ns in "${NAMESPACES[@]}"; do
        if ns_exists "$ns"; then
            any=1
            echo "== $ns"
            nsx "$ns" ip -br link | sed 's/^/   /'
            nsx "$ns" ip -br addr | awk '$1!="lo" && NF>2' | sed 's/^/   addr /'
        else
            echo "== $ns: (absent)"
        fi
    done
    ((any)) || { say "lab is down"; return 0; }
    echo "== processes"
    for f in "$PIDS"/*.pid; do
        [[ -e $f ]] || continue
        name=$(basename "$f" .pid)
        if pid_alive "$name"; then echo "   $name: running (pid $(cut -d' ' -f1 "$f"))"
        else echo "   $name: NOT running"; fi
    done
    for ns in "${NAMESPACES[@]}"; do
        ns_exists "$ns" && echo "   netns $ns pids: $(ip netns pids "$ns" | tr '\n' ' ')"
    done
    if [[ -f $RUN/aftr-stats.json ]]; then
        echo "== aftr stats ($RUN/aftr-stats.json)"
        python3 - "$RUN/aftr-stats.json" <<'EOF'
import json, sys, time
d = json.load(open(sys.argv[1]))
print(f"   decap_ok={d['decap_ok']} encap_ok={d['encap_ok']} errors_total={d['errors_total']} "
      f"age={time.time() - d['updated']:.1f}s")
errs = {k: v for k, v in d["errors"].items() if v}
print(f"   errors: {errs or 'none'}")
print(f"   last hop limit={d['last_hop_limit']} tclass={d['last_tclass']} "
      f"inner tos={d['last_inner_tos']} b4={d['last_b4']}")
print(f"   bindings ({d['binding_count']}): " +
      ", ".join(f"{k}->{v}" for k, v in list(d["bindings"].items())[-10:]))
EOF
    fi
}

# --------------------------------------------------------------- selftest
stat_get() { # PYEXPR over d = aftr stats
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$RUN/aftr-stats.json" "$1"
}
# fresh_stats: let in-flight packets settle, then make aftr.py rewrite its stats now
fresh_stats() {
    sleep 0.3
    kill -USR1 "$(cut -d' ' -f1 "$PIDS/aftr.pid")"
    sleep 0.2
}
# udp_echo NS ADDR MSG: one datagram to ADDR:7, print the reply (2 s timeout)
udp_echo() {
    nsx "$1" python3 -c '
import socket, sys
a, m = sys.argv[1], sys.argv[2].encode()
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(m, (a, 7))
try:
    print(s.recv(2048).decode())
except socket.timeout:
    print("(timeout)")' "$2" "$3"
}
snmp6() { nsx aftr awk -v k="$1" '$1==k {print $2}' /proc/net/snmp6; }

FAILS=0
check() { # DESCRIPTION CMD...
    local d=$1; shift
    if "$@"; then printf '  PASS  %s\n' "$d"; else printf '  FAIL  %s\n' "$d"; FAILS=$((FAILS + 1)); fi
}
eq() { [[ $1 == "$2" ]] || { printf '        got %q, want %q\n' "$1" "$2"; return 1; }; }

# inject_bad: from the router namespace, send deliberately broken softwire
# packets (B4 address -> AFTR) and one proto-4 packet to an address no raw
# socket is bound to (the control for the ICMPv6 parameter-problem behaviour).
inject_bad() {
    nsx router python3 - "$B4_ADDR" "$AFTR_ADDR" <<'EOF'
import socket, struct, sys
b4, aftr = sys.argv[1], sys.argv[2]
def csum(b):
    if len(b) & 1: b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
SRC, DST = socket.inet_aton("192.168.2.10"), socket.inet_aton("198.51.100.10")
def ip4(proto, payload, tos=0, ttl=64, extra_len=0, break_csum=False):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload) + extra_len, 0x1234, 0x4000,
                    ttl, proto, 0, SRC, DST)
    c = csum(h) ^ (0x5555 if break_csum else 0)
    return h[:10] + struct.pack("!H", c) + h[12:] + payload
def l4(proto, body, off):  # fill in the L4 checksum at offset off
    ph = SRC + DST + struct.pack("!BBH", 0, proto, len(body))
    c = csum(ph + body) if proto != 1 else csum(body)
    return body[:off] + struct.pack("!H", c) + body[off + 2:]
udp = l4(17, struct.pack("!HHHH", 40000, 9, 12, 0) + b"bad!", 6)
tcp = l4(6, struct.pack("!HHIIBBHHH", 40000, 9, 1, 0, 0x50, 0x02, 1024, 0, 0), 16)
icmp = l4(1, struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1) + b"lab", 2)
def flip(b, off): return b[:off] + bytes([b[off] ^ 0xff]) + b[off + 1:]
cases = [
    ("bad-ip-checksum",  ip4(17, udp, break_csum=True), 0),
    ("bad-total-length", ip4(17, udp, extra_len=4), 0),
    ("ttl-zero",         ip4(17, udp, ttl=0), 0),
    ("bad-udp-checksum", ip4(17, flip(udp, 9)), 0),
    ("bad-tcp-checksum", ip4(6, flip(tcp, 4)), 0),
    ("bad-icmp-checksum", ip4(1, flip(icmp, 9)), 0),
    ("tclass-mismatch",  ip4(1, icmp, tos=0x20), 0x00),   # valid packet, wrong outer tclass
]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 4)
s.bind((b4, 0))
for name, pkt, tc in cases:
    s.sendmsg([pkt], [(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, struct.pack("i", tc))], 0, (aftr, 0))
# control: proto 4 to a local aftr address that no raw socket is bound to
s.sendto(ip4(17, udp), ("2001:db8:1::2", 0))
print("  injected: " + ", ".join(c[0] for c in cases) + " + 1 proto-4 packet to 2001:db8:1::2")
EOF
}

cmd_selftest() {
    local queues=1
    [[ -f $RUN/queues ]] && queues=$(cat "$RUN/queues")
    if ns_exists router; then
        if [[ -n $(ip netns pids router) ]]; then
            die "selftest: processes are running in the router namespace (ipoed?): $(ip netns pids router | tr '\n' ' ')"
        fi
        local links
        links=$(nsx router ip -d link show)
        if grep -q 'prog/xdp' <<<"$links"; then
            die "selftest: an XDP program is attached in the router namespace; stop ipoed first"
        fi
    fi
    if ! ns_exists router || ! pid_alive aftr || ! pid_alive http ||
        [[ -n $(nsx router ip -o addr show dev lan0) || -n $(nsx router ip -o addr show dev wan0) ]]; then
        say "selftest: lab not up or not pristine, (re)building it"
        cmd_up --queues "$queues" >/dev/null
    fi

    say "selftest: turning the router namespace into a kernel router + b4ref.py (lab-only B4)"
    nsx router ip addr add 192.168.2.1/24 dev lan0
    nsx router ip -6 addr add 2001:db8:0:111::1/64 dev lan0 nodad
    nsx router ip -6 addr add "$B4_ADDR"/64 dev wan0 nodad
    nsx router ip -6 addr add fe80::2/64 dev wan0 nodad
    nsx router ip -6 route add default via fe80::1 dev wan0
    sysctl_ns router net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    start_bg b4ref router b4ref.py python3 -u "$LAB_SRC/b4ref.py" --b4 "$B4_ADDR" \
        --aftr "$AFTR_ADDR" --tun b4tun --mtu 1460 --route default
    local i
    for i in $(seq 50); do
        nsx router ip route show default 2>/dev/null | grep -q b4tun && break
        sleep 0.1
    done

    local pp0 unk0 out
    pp0=$(snmp6 Icmp6OutParmProblems); unk0=$(snmp6 Ip6InUnknownProtos)
    FAILS=0
    say "selftest: traffic from lan1"
    out=$(nsx lan1 curl -sS --max-time 10 "http://$V4_SERVER/hello.txt" || true)
    check "IPv4 via DS-Lite: curl http://$V4_SERVER/hello.txt -> '${out}'" eq "$out" "hello from inet"
    out=$(nsx lan1 curl -sS --max-time 10 -g "http://[$V6_SERVER]/hello.txt" || true)
    check "IPv6 native:      curl http://[$V6_SERVER]/hello.txt -> '${out}'" eq "$out" "hello from inet"
    local want
    want=$(cut -d' ' -f1 "$RUN/www/blob.bin.sha256")
    out=$(nsx lan1 curl -sS --max-time 30 "http://$V4_SERVER/blob.bin" | sha256sum | cut -d' ' -f1 || true)
    check "IPv4 via DS-Lite: 1 MiB blob.bin sha256 ok (PMTU 1460 inside the softwire)" eq "$out" "$want"
    out=$(nsx lan1 curl -sS --max-time 30 -g "http://[$V6_SERVER]/blob.bin" | sha256sum | cut -d' ' -f1 || true)
    check "IPv6 native:      1 MiB blob.bin sha256 ok" eq "$out" "$want"
    out=$(udp_echo lan1 "$V4_SERVER" ipoe-lab-udp4 2>&1 || true)
    check "IPv4 via DS-Lite: UDP echo $V4_SERVER:7" eq "$out" "ipoe-lab-udp4"
    out=$(udp_echo lan1 "$V6_SERVER" ipoe-lab-udp6 2>&1 || true)
    check "IPv6 native:      UDP echo [$V6_SERVER]:7" eq "$out" "ipoe-lab-udp6"
    out=$(nsx lan1 ping -n -c 1 -W 3 -Q 0xb8 "$V4_SERVER" 2>&1 | grep -o '[0-9]* received' || true)
    check "IPv4 via DS-Lite: ping -Q 0xb8 $V4_SERVER ($out)" eq "$out" "1 received"

    local line4 line6
    line4=$(grep -m1 '^::ffff:203\.0\.113\.1 .*"GET /hello.txt' "$RUN/http-access.log" || true)
    check "inet HTTP log shows IPv4 client 203.0.113.1 (NAT by aftr): ${line4}" test -n "$line4"
    line6=$(grep -m1 '^2001:db8:0:111::10 .*"GET /hello.txt' "$RUN/http-access.log" || true)
    check "inet HTTP log shows IPv6 client 2001:db8:0:111::10: ${line6}" test -n "$line6"

    fresh_stats
    check "aftr: decap_ok=$(stat_get 'd["decap_ok"]') > 0" test "$(stat_get 'd["decap_ok"] > 0')" = True
    check "aftr: encap_ok=$(stat_get 'd["encap_ok"]') > 0" test "$(stat_get 'd["encap_ok"] > 0')" = True
    check "aftr: errors_total == 0 ($(stat_get '{k:v for k,v in d["errors"].items() if v} or "none"'))" \
        eq "$(stat_get 'd["errors_total"]')" 0
    check "aftr: binding 192.168.2.10 -> $B4_ADDR" \
        eq "$(stat_get 'd["bindings"].get("192.168.2.10")')" "$B4_ADDR"
    check "aftr: outer hop limit 63 (64 at the B4, -1 in hgw)" eq "$(stat_get 'd["last_hop_limit"]')" 63
    check "aftr: outer traffic class 0xb8 == inner TOS of the ping" \
        eq "$(stat_get '(d["last_tclass"], d["last_inner_tos"])')" "(184, 184)"
    check "aftr netns: no ICMPv6 parameter problem sent (Icmp6OutParmProblems +0)" \
        eq "$(snmp6 Icmp6OutParmProblems)" "$pp0"
    check "aftr netns: no unknown-protocol drops (Ip6InUnknownProtos +0)" \
        eq "$(snmp6 Ip6InUnknownProtos)" "$unk0"

    say "selftest: negative tests (broken softwire packets must be counted by name)"
    local before name
    before=$(stat_get 'json.dumps(d["errors"])')
    inject_bad
    fresh_stats
    for name in bad-ip-checksum bad-total-length ttl-zero bad-udp-checksum bad-tcp-checksum \
        bad-icmp-checksum tclass-mismatch; do
        check "aftr counted $name (+1)" eq \
            "$(stat_get "d['errors']['$name'] - json.loads('$before')['$name']")" 1
    done
    check "control: proto 4 to an address without raw socket -> parameter problem (+1)" \
        eq "$(snmp6 Icmp6OutParmProblems)" "$((pp0 + 1))"

    # keep the evidence, then rebuild a pristine lab (router without addresses)
    rm -rf "$RUN/selftest"
    mkdir -p "$RUN/selftest"
    cp "$RUN"/aftr-stats.json "$RUN"/aftr.log "$RUN"/http-access.log "$RUN/selftest/" 2>/dev/null || true
    stop_pidfile b4ref
    cp "$RUN"/b4ref.out "$RUN/selftest/" 2>/dev/null || true
    sed 's/^/  /' "$RUN/selftest/b4ref.out" 2>/dev/null || true
    say "selftest: evidence saved in $RUN/selftest/; rebuilding the lab"
    cmd_up --queues "$queues" >/dev/null
    if ((FAILS)); then
        trap - ERR
        warn "selftest: $FAILS check(s) FAILED (evidence in $RUN/selftest/)"
        exit 1
    fi
    say "selftest: ALL PASSED (lab rebuilt, router namespace has no addresses again)"
}

# --------------------------------------------------------------- main
usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

main() {
    trap 'on_err $LINENO "$BASH_COMMAND"' ERR
    local cmd=${1:-}
    (($#)) && shift
    case $cmd in
        up) cmd_up "$@" ;;
        down) [[ $(id -u) -eq 0 ]] || die "must be root"; cmd_down ;;
        status) cmd_status ;;
        selftest) check_prereqs; cmd_selftest ;;
        -h | --help | help) usage 0 ;;
        *) usage 1 >&2 ;;
    esac
}

main "$@"
