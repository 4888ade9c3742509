#!/usr/bin/env bash
# lab.sh - network-namespace test lab for ipoe-router (ipoed).
#
#   lab.sh up [--queues N]   build the lab (tears down leftovers first)
#   lab.sh down              stop everything and delete the namespaces
#   lab.sh status            namespaces, links, processes, hgw peers, aftr stats
#   lab.sh selftest          prove the lab works WITHOUT ipoed (kernel router +
#                            b4ref.py in the router namespace, then the hgw
#                            peers), then rebuild
#   lab.sh peers-selftest    only the hgw peer checks (rdisc6, dhclient, DNS), then rebuild
#   lab.sh radvd start [--lifetime S] [--interval S] [--mtu M] [--hop-limit H] | stop [--kill] | status
#   lab.sh dhcp6 start [--server kea|isc|wide] [--pool PREFIX/LEN] [--delegated-len N]
#                      [--t1 S] [--t2 S] [--preferred S] [--valid S] [--aftr-name NAME]
#                      [--rapid-commit yes|no] [--duid HEX] | stop | status | log
#   lab.sh dns start [--aftr ADDR] [--ttl S] | stop | status | query NAME [A|AAAA|CNAME]
#   lab.sh aftr restart [--encap-limit N]   the AFTR emulator again, with aftr.py options
#                            (--encap-limit: Linux ip6tnl's encapsulation limit option toward the B4)
#   lab.sh br start [--rule v6plus-lab|ocn-lab|RULE6,RULE4,EA,OFFSET] [--iid legacy|rfc7597] [br.py options]
#            | stop | status | explain [--rule R] [--iid I] IPV6[/LEN]|IPV4:PORT
#                            the MAP-E BR emulator (br.py) beside the AFTR, with its routes
#   lab.sh ipip start [ipip.py options] | stop | status | stats | register ADDR|none
#                            the fixed-IPv4 IPIP tunnel end (ipip.py) beside the AFTR
#   lab.sh update start [update_server.py options] | stop | status | stats
#                            the provider's update URL http://[2001:db8:77:ee::80]:8082/update
#   lab.sh hb46pp start --answer FILE [--tls] [--dns] [options] | stop | status | stats
#            | answer FILE | fault KIND [ARG] [--count N] | fault none
#                            the HB46PP provisioning server (hb46pp_server.py)
#   lab.sh dns add txt NAME TEXT | add host NAME ADDR... | del txt|host NAME | records
#                            extra records of the lab DNS (e.g. the TXT of 4over6.info)
#   lab.sh lanhost add NAME [--mac MAC] [--ipv6 slaac|off] | del NAME | list | show NAME
#   lab.sh lanhost dhcp NAME dhcpcd [-4|-6|both] | udhcpc | dhclient4 | dhclient6 [-S|-N]  [--wait S]
#   lab.sh lanhost release NAME [CLIENT] | renew NAME [CLIENT] | stop NAME [CLIENT]
#                            LAN hosts lan2..lan9 that configure themselves (SLAAC, DHCP clients)
#   lab.sh lan-selftest      prove the LAN hosts and their clients work WITHOUT ipoed (kernel
#                            router + dnsmasq as DHCPv4/RA/DHCPv6/DNS server), then rebuild
#
# Topology (see README.md):
#   lan1 [eth0] -- [sw-lan1] lansw:br0 [sw-router] -- [lan0] router [wan0] -- [down0] hgw ...
#   lanN [eth0] -- [sw-lanN] lansw:br0    (lab.sh lanhost add lanN, N = 2..9)
#   hgw [core0] -- [up0] aftr [out0] -- [v4] inet;  hgw [inet0] -- [v6] inet
#
# Run dir (pids, logs, stats, www): $IPOE_LAB_DIR (default /run/ipoe-lab).
# Only documentation prefixes are used and no route leads out of the namespaces.
set -Eeuo pipefail

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUN=${IPOE_LAB_DIR:-/run/ipoe-lab}
case $RUN in /*) ;; *) RUN=$PWD/$RUN ;; esac
PIDS=$RUN/pids

NAMESPACES=(lan1 lansw router hgw aftr inet)
# extra LAN hosts, created on demand by 'lab.sh lanhost add' (deleted by 'down')
LANHOSTS=(lan2 lan3 lan4 lan5 lan6 lan7 lan8 lan9)
# interface names that must never be left behind in the root namespace
# (only deleted there if they are veths; the lab never creates them there)
LAB_IFNAMES=(lan0 wan0 down0 core0 inet0 up0 out0 v4 v6 sw-router sw-lan1 sw-lan2 sw-lan3 sw-lan4
    sw-lan5 sw-lan6 sw-lan7 sw-lan8 sw-lan9)

# addresses (documentation prefixes only)
AFTR_ADDR=2001:db8:aaaa::1
BR_ADDR=2001:db8:77:bb::1          # MAP-E BR (br.py, 'lab.sh br start'), on lo in the aftr namespace
B4_ADDR=2001:db8:0:100::2          # router WAN address (selftest only)
ROUTER_WAN_MAC=02:00:00:00:02:02
ROUTER_WAN_LL=fe80::ff:fe00:202    # EUI-64 link-local of router wan0 (hgw routes pools to it)
ROUTER_DUID_LL=00:03:00:01:02:00:00:00:02:02   # DUID-LL of router wan0 (for dhcp6s)
HGW_LL=fe80::1
HGW_ADDR=2001:db8:0:100::1         # hgw down0: RDNSS and the DNS server
DHCP6_POOL=2001:db8:0:110::/60     # default delegated-prefix pool (delegated length = pool length)
AFTR_NAME=aftr.lab.example
HGW_TPL=$LAB_SRC/hgw               # config templates of the hgw peers
LAN_TPL=$LAB_SRC/lan               # hook script of the LAN-host DHCP clients
BR_MAC=02:00:00:00:06:00           # lansw br0 (sends only MLD: queries from fe80::600, STP off)
V4_SERVER=198.51.100.10
V6_SERVER=2001:db8:ffff::10
# fixed-IPv4 (IPIP) provider side, issue 20 ('lab.sh ipip', 'update', 'hb46pp'; README "Fixed IPv4 and HB46PP")
IPIP_ADDR=2001:db8:77:cc::1        # ipip.py's tunnel end, on lo in the aftr namespace
IPIP_IPV4=192.0.2.77               # the customer's fixed IPv4 (routed into ipiptun, no NAT)
PROV_NET=2001:db8:77:ee::/64       # the provider's servers, on lo in the aftr namespace
UPDATE_ADDR=2001:db8:77:ee::80     # update_server.py, port $UPDATE_PORT
UPDATE_PORT=8082
HB46PP_ADDR=2001:db8:77:ee::46     # hb46pp_server.py, ports 80 and (--tls) 443
HB46PP_NAME=hb46pp.lab.example     # its name in the lab DNS ('hb46pp start --dns') and certificate

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
    for c in ip nft python3 ethtool socat ss setsid curl sha256sum ping mount awk openssl; do
        command -v "$c" >/dev/null 2>&1 || missing+=("command '$c'")
    done
    # hgw peers started by 'up' (Debian packages radvd, kea-dhcp6-server, dnsmasq-base)
    for c in radvd kea-dhcp6 dnsmasq; do
        command -v "$c" >/dev/null 2>&1 || missing+=("command '$c' (hgw peer)")
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
    local name=$1; shift
    start_bg_to "$RUN/$name.out" "$name" "$@"
}
# start_bg_to FILE NAME NS KEYWORD CMD...: start_bg with stdout+stderr appended to FILE
start_bg_to() {
    local out=$1 name=$2; shift 2
    start_bg_pf "$out" "$PIDS/$name.pid" "$@"
}
# start_bg_pf FILE PIDFILE NS KEYWORD CMD...: start_bg_to with an explicit pid file path
start_bg_pf() {
    local out=$1 pf=$2 ns=$3 kw=$4; shift 4
    ip netns exec "$ns" setsid "$@" </dev/null >>"$out" 2>&1 &
    printf '%s %s\n' "$!" "$kw" >"$pf"
}

proc_running() { # PID -> 0 if it exists and is not a zombie (init may reap late)
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

pid_alive() { pf_alive "$PIDS/$1.pid"; } # NAME -> 0 if the recorded process is alive and is ours
pf_alive() { # PIDFILE -> 0 if the process it names is alive and is ours
    local f=$1 pid kw
    [[ -f $f ]] || return 1
    read -r pid kw <"$f" || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$kw"
}

stop_pidfile() { stop_pf "$PIDS/$1.pid" "${2:-TERM}"; } # NAME [SIGNAL]
stop_pf() { # PIDFILE [SIGNAL]: SIGNAL (default TERM), KILL after 3 s; reaps our own children
    local f=$1 sig=${2:-TERM} pid kw i
    [[ -f $f ]] || return 0
    if pf_alive "$f"; then
        read -r pid kw <"$f"
        kill -"$sig" "$pid" 2>/dev/null || true
        for i in $(seq 30); do proc_running "$pid" || break; sleep 0.1; done
        if proc_running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
        wait "$pid" 2>/dev/null || true   # no-op unless it is a child of this shell
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
    lanhosts_stop_all
    for ns in "${LANHOSTS[@]}" "${NAMESPACES[@]}"; do
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
    rm -rf "$RUN/lanhosts"
    if [[ -f $RUN/run-dhcpcd.created ]]; then   # lh_start made the mount point for dhcpcd
        rmdir /run/dhcpcd 2>/dev/null || true
        rm -f "$RUN/run-dhcpcd.created"
    fi
    [[ -n $quiet ]] || say "down: namespaces ${NAMESPACES[*]} (and lan2..lan9) removed, processes stopped"
}

# --------------------------------------------------------------- up
# sw_port IF [MODE]: enslave lansw's end of a veth to br0 and bring it up. MODE:
# - off (default): no checksum offload, no GSO/GRO (a port without tx checksum
#   completes a CHECKSUM_PARTIAL skb in validate_xmit_skb before it leaves)
# - csum: tx checksum on, GSO/GRO off: the port toward the router, so that the
#   partial checksums of a default-offload host reach ipoed as they are
# - default: the kernel's defaults (the port of a default-offload host)
sw_port() {
    case ${2:-off} in
        off) nsx lansw ethtool -K "$1" tx off tso off gso off gro off >/dev/null ;;
        csum) nsx lansw ethtool -K "$1" tx on tso off gso off gro off >/dev/null ;;
        default) ;;
        *) die "sw_port: unknown mode '$2'" ;;
    esac
    nsx lansw ip link set dev "$1" master br0
    nsx lansw ip link set dev "$1" up
}

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
    rm -f "$RUN"/br-stats.json "$RUN"/br-stats.json.tmp "$RUN"/br.routes
    rm -f "$RUN"/ipip* "$RUN"/update* "$RUN"/hb46pp* "$RUN"/.ipip-client-*
    rm -rf "$RUN/tls"
    # hgw peers: configs, state, leases, logs of the previous lab
    rm -f "$RUN"/radvd.* "$RUN"/dhcp6* "$RUN"/dns.* "$RUN"/dnsmasq.* "$RUN"/dhclient*
    echo "$queues" >"$RUN/queues"

    local ns
    for ns in "${NAMESPACES[@]}"; do
        ip netns add "$ns"
        nsx "$ns" ip link set lo up
        # static addresses only: no DAD delays anywhere
        sysctl_ns "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    done

    # ---- lansw: the LAN switch, a learning bridge with MLD snooping and an MLDv2 querier,
    # as a managed switch: multicast reaches a port only for the groups reported there.
    # IPv6 stays off on the ports; br0 itself needs a link-local to send queries from
    # (fe80::600, static: no DAD, no RS, no SLAAC from ipoed's RAs). Queries every 10 s
    # (answers within 5 s), so memberships show and expire within a test's time.
    sysctl_ns lansw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    nsx lansw ip link add br0 address "$BR_MAC" type bridge stp_state 0 forward_delay 0 \
        mcast_snooping 1 mcast_querier 1 mcast_mld_version 2 \
        mcast_query_interval 1000 mcast_query_response_interval 500 \
        mcast_startup_query_interval 250
    sysctl_ns lansw net.ipv6.conf.br0.disable_ipv6=0 net.ipv6.conf.br0.accept_ra=0 \
        net.ipv6.conf.br0.autoconf=0 net.ipv6.conf.br0.router_solicitations=0
    nsx lansw ip link set dev br0 addrgenmode none
    nsx lansw ip -6 addr add fe80::600/64 dev br0 nodad
    nsx lansw ip link set br0 up

    # ---- links (created directly inside the namespaces; nothing in the root ns)
    # router lan0 <-> sw-router has N queues; the hosts' veths have 1: the bridge then
    # picks sw-router's tx queue (= lan0's rx queue) by flow hash. A multi-queue host
    # veth would leave its tx queue index in skb->queue_mapping, the bridge port would
    # take it as a recorded rx queue, and almost every flow would land on lan0 queue 0
    # (measured with an XDP_PASS program: 385/0 with 2 queues on lan1, 204/180 with 1).
    veth router lan0 02:00:00:00:02:01 lansw sw-router 02:00:00:00:06:01 "$queues"
    veth lan1 eth0 02:00:00:00:01:10  lansw sw-lan1 02:00:00:00:06:10 1
    sw_port sw-router csum
    sw_port sw-lan1
    veth router wan0 02:00:00:00:02:02 hgw down0 02:00:00:00:03:01 "$queues"
    veth hgw core0 02:00:00:00:03:02  aftr up0 02:00:00:00:04:01 1
    veth hgw inet0 02:00:00:00:03:03  inet v6 02:00:00:00:05:02 1
    veth aftr out0 02:00:00:00:04:02  inet v4 02:00:00:00:05:01 1

    # ---- router: up, but no kernel addresses at all (ipoed owns ARP/NDP)
    local ifn
    for ifn in lan0 wan0; do
        nsx router ip link set dev "$ifn" addrgenmode none
        # the kernel must not act on hgw's RAs (SLAAC address, default route)
        sysctl_ns router "net.ipv6.conf.$ifn.accept_ra=0" "net.ipv6.conf.$ifn.autoconf=0"
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

    # ---- hgw: emulated NTT home gateway, plain IPv6 router. down0 keeps the
    # kernel's default offloads, as a real peer would: its own UDP (Kea,
    # dnsmasq) and the IPv6 TCP it forwards from inet reach ipoed with partial
    # checksums (CHECKSUM_PARTIAL), which ipoed must complete (README, Kernel notes).
    nsx hgw ip link set dev down0 addrgenmode none   # its only link-local is fe80::1
    for ifn in down0 core0 inet0; do nsx hgw ip link set "$ifn" up; done
    nsx hgw ip -6 addr add fe80::1/64 dev down0 nodad
    nsx hgw ip -6 addr add 2001:db8:0:100::1/64 dev down0 nodad
    nsx hgw ip -6 addr add 2001:db8:1::1/64 dev core0 nodad
    nsx hgw ip -6 addr add 2001:db8:ffff::1/64 dev inet0 nodad
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
    # 20 MB for the MSS-clamp / PMTU check (issue 6): long enough that a
    # broken clamp or a black hole shows as a stall.
    python3 -c 'import random,sys; sys.stdout.buffer.write(random.Random(20261204).randbytes(20_000_000))' \
        >"$RUN/www/blob20.bin"
    (cd "$RUN/www" && sha256sum blob20.bin >blob20.bin.sha256)

    # ---- the lab CA and the HB46PP server's certificates (kept in the run dir only)
    tls_make

    # ---- processes
    # Softwire MTU 1500: a 1500-byte IPv4 packet goes through, and the
    # AFTR's kernel fragments the outer IPv6 packet (RFC 6333 5.3), which
    # the B4 must reassemble.
    aftr_start
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

    # ---- hgw peers: DNS, RA, DHCPv6-PD (Kea); dhcp6 also routes the pool to the router
    dns_start >/dev/null
    radvd_start >/dev/null
    dhcp6_start >/dev/null
    cat <<EOF
lab: up (queues=$queues, run dir $RUN)
  namespaces : ${NAMESPACES[*]}
  lan1       : eth0 192.168.2.10/24 gw 192.168.2.1, 2001:db8:0:111::10/64 gw 2001:db8:0:111::1
  lansw      : bridge br0 (fe80::600 only, STP off, MLD snooping + querier): ports sw-router, sw-lan1
               ('lab.sh lanhost add lan2..lan9' adds hosts that configure themselves)
  router     : lan0 02:00:00:00:02:01, wan0 02:00:00:00:02:02 (up, no addresses; start ipoed here)
  hgw        : down0 fe80::1 / 2001:db8:0:100::1/64, core0 2001:db8:1::1, inet0 2001:db8:ffff::1
               radvd (M=1 O=1, lifetime 1800, 2001:db8:0:100::/64, RDNSS/DNSSL), Kea DHCPv6-PD
               $DHCP6_POOL -> /60, route $DHCP6_POOL via $ROUTER_WAN_LL, dnsmasq [$HGW_ADDR]:53
  aftr       : $AFTR_ADDR (aftr.py pid $(cut -d' ' -f1 "$PIDS/aftr.pid")), NAT to 203.0.113.1 on out0
  inet       : http://$V4_SERVER/ http://[$V6_SERVER]/ (hello.txt, blob.bin), udp echo :7
  logs       : $RUN/{aftr.log,aftr-stats.json,http-access.log,radvd.log,dhcp6.log,dns.log,*.out}
EOF
}

# --------------------------------------------------------------- hgw peers
# radvd, a DHCPv6-PD server (Kea, ISC dhcpd -6 or WIDE dhcp6s) and dnsmasq, all
# in the hgw namespace on down0, all started without systemd (setsid, foreground).

# render TEMPLATE OUT KEY=VALUE...: replace @KEY@ in TEMPLATE, fail on leftovers
render() {
    local tpl=$1 out=$2; shift 2
    python3 - "$tpl" "$out" "$@" <<'PY'
import re, sys
tpl, out, kvs = sys.argv[1], sys.argv[2], sys.argv[3:]
t = open(tpl).read()
for kv in kvs:
    k, v = kv.split("=", 1)
    t = t.replace(f"@{k}@", v)
left = sorted(set(re.findall(r"@[A-Z0-9_]+@", t)))
if left:
    sys.exit(f"{tpl}: placeholders left: {' '.join(left)}")
open(out, "w").write(t)
PY
}

state_get() { [[ -f $1 ]] && sed -n "s/^$2=//p" "$1" | tail -n 1; } # FILE KEY
is_uint() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 <= 4294967295)); }
need_uint() { is_uint "$2" || die "$1 must be a non-negative integer, got '$2'"; } # OPTNAME VALUE

# wait_until TENTHS CMD...: poll CMD every 0.1 s, at most TENTHS times
wait_until() {
    local n=$1 i; shift
    for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done
    return 1
}
need_lab() { ns_exists hgw || die "the lab is not up (run 'lab.sh up' first)"; }
hgw_listens_udp() { [[ -n $(nsx hgw ss -Hlun "sport = :$1") ]]; }
hgw_port_free() { ! hgw_listens_udp "$1"; }

# ---- radvd
cmd_radvd() {
    local sub=${1:-status}
    (($#)) && shift
    [[ $sub == status ]] || need_lab
    case $sub in
        start) radvd_start "$@" ;;
        stop) radvd_stop "$@" ;;
        status) radvd_status ;;
        *) die "usage: lab.sh radvd start [--lifetime S] [--interval S] [--mtu M] [--hop-limit H] [--managed on|off] [--rdnss on|off] [--prefix P/64] [--deprecated P/64] | stop [--kill] | status" ;;
    esac
}

radvd_start() {
    local lifetime=1800 interval= mtu=1500 hoplimit=64 managed=on rdnss=on
    local prefix=2001:db8:0:100::/64 deprecated=
    while (($#)); do
        case $1 in
            --managed) managed=${2:-}; shift 2 || die "--managed needs a value" ;;
            --rdnss) rdnss=${2:-}; shift 2 || die "--rdnss needs a value" ;;
            --prefix) prefix=${2:-}; shift 2 || die "--prefix needs a value" ;;
            --deprecated) deprecated=${2:-}; shift 2 || die "--deprecated needs a value" ;;
            --lifetime) lifetime=${2:-}; shift 2 || die "--lifetime needs a value" ;;
            --interval) interval=${2:-}; shift 2 || die "--interval needs a value" ;;
            --mtu) mtu=${2:-}; shift 2 || die "--mtu needs a value" ;;
            --hop-limit) hoplimit=${2:-}; shift 2 || die "--hop-limit needs a value" ;;
            *) die "radvd start: unknown option '$1'" ;;
        esac
    done
    need_uint --lifetime "$lifetime"
    if [[ -z $interval ]]; then # RA interval: a third of the lifetime, 4..600 s
        interval=$((lifetime / 3))
        ((lifetime == 0 || interval > 600)) && interval=600
        ((interval < 4)) && interval=4
    fi
    need_uint --interval "$interval"
    need_uint --mtu "$mtu"
    need_uint --hop-limit "$hoplimit"
    # the MTU option may not exceed down0's own MTU (1500)
    ((mtu >= 1280 && mtu <= 1500)) || die "--mtu must be 1280..1500 (AdvLinkMTU, down0 is 1500)"
    ((hoplimit <= 255)) || die "--hop-limit must be 0..255 (AdvCurHopLimit)"
    ((interval >= 4 && interval <= 1800)) || die "--interval must be 4..1800 (radvd MaxRtrAdvInterval)"
    ((lifetime == 0 || (lifetime >= interval && lifetime <= 9000))) ||
        die "--lifetime must be 0 or between the interval ($interval) and 9000 (radvd AdvDefaultLifetime)"
    case $managed in on | off) ;; *) die "--managed must be on or off" ;; esac
    case $rdnss in on | off) ;; *) die "--rdnss must be on or off" ;; esac
    local p prefixes="" dnsopts=""
    for p in "$prefix" $deprecated; do
        [[ $p =~ ^[0-9a-f:]+::/64$ ]] || die "bad prefix '$p' (a /64 network such as 2001:db8:0:200::/64)"
    done
    prefixes=$(printf '    prefix %s {\n        AdvOnLink on;\n        AdvAutonomous on;\n    };' "$prefix")
    if [[ -n $deprecated ]]; then # RFC 9096: the old /64 with preferred lifetime 0
        prefixes+=$(printf '\n    prefix %s {\n        AdvOnLink on;\n        AdvAutonomous on;\n        AdvPreferredLifetime 0;\n        AdvValidLifetime 600;\n    };' "$deprecated")
    fi
    if [[ $rdnss == on ]]; then
        dnsopts=$(printf '    RDNSS %s {\n        AdvRDNSSLifetime %s;\n    };\n    DNSSL lab.example {\n        AdvDNSSLLifetime %s;\n    };' \
            "$HGW_ADDR" $((2 * interval)) $((2 * interval)))
    fi
    local minint
    minint=$(awk -v m="$interval" 'BEGIN { v = 0.75 * m; if (v < 3) v = 3; printf "%g", v }')
    [[ $(nsx hgw sysctl -n net.ipv6.conf.all.forwarding) == 1 ]] ||
        die "hgw: net.ipv6.conf.all.forwarding is not 1 (radvd would refuse to advertise a default router)"
    render "$HGW_TPL/radvd.conf.in" "$RUN/radvd.conf" \
        LIFETIME="$lifetime" MAXINT="$interval" MININT="$minint" DNSLIFE=$((2 * interval)) \
        MTU="$mtu" HOPLIMIT="$hoplimit" MANAGED="$managed" PREFIXES="$prefixes" DNSOPTS="$dnsopts"
    nsx hgw radvd --configtest -C "$RUN/radvd.conf" >"$RUN/radvd.configtest" 2>&1 ||
        { cat "$RUN/radvd.configtest" >&2; die "radvd: bad config $RUN/radvd.conf"; }
    # a restart must not send a "router lifetime 0" goodbye RA: KILL the old one
    stop_pidfile radvd KILL
    rm -f "$RUN/radvd.pidfile"
    start_bg radvd hgw radvd radvd --nodaemon --config "$RUN/radvd.conf" \
        --pidfile "$RUN/radvd.pidfile" --logmethod logfile --logfile "$RUN/radvd.log"
    if ! wait_until 50 test -s "$RUN/radvd.pidfile" || ! pid_alive radvd; then
        tail -n 20 "$RUN/radvd.out" "$RUN/radvd.log" >&2 2>/dev/null || true
        die "radvd did not start"
    fi
    printf 'lifetime=%s\ninterval=%s\nmin_interval=%s\nmtu=%s\nhop_limit=%s\n' \
        "$lifetime" "$interval" "$minint" "$mtu" "$hoplimit" >"$RUN/radvd.state"
    say "radvd: running on hgw down0 from $HGW_LL (pid $(cut -d' ' -f1 "$PIDS/radvd.pid")):" \
        "M=$([[ $managed == on ]] && echo 1 || echo 0) O=1, router lifetime ${lifetime}s, RA every ${minint}-${interval}s," \
        "prefix $prefix${deprecated:+ (and $deprecated deprecated)}, RDNSS/DNSSL $rdnss, MTU $mtu, hop limit $hoplimit"
}

radvd_stop() {
    local sig=TERM what="final RA with router lifetime 0 sent"
    case ${1:-} in
        "") ;;
        --kill) sig=KILL what="SIGKILL: no final RA, hosts' default routes must time out" ;;
        *) die "radvd stop: unknown option '$1'" ;;
    esac
    if pid_alive radvd; then
        stop_pidfile radvd "$sig"
        say "radvd: stopped ($what)"
    else
        rm -f "$PIDS/radvd.pid"
        say "radvd: not running"
    fi
    rm -f "$RUN/radvd.pidfile" "$RUN/radvd.state"
}

radvd_status() {
    if pid_alive radvd; then
        echo "radvd: running (pid $(cut -d' ' -f1 "$PIDS/radvd.pid")), router lifetime" \
            "$(state_get "$RUN/radvd.state" lifetime)s, RA every" \
            "$(state_get "$RUN/radvd.state" min_interval)-$(state_get "$RUN/radvd.state" interval)s," \
            "config $RUN/radvd.conf, log $RUN/radvd.log"
    else
        echo "radvd: not running"
    fi
}

# ---- DHCPv6 server with prefix delegation
cmd_dhcp6() {
    local sub=${1:-status}
    (($#)) && shift
    [[ $sub == status || $sub == log ]] || need_lab
    case $sub in
        start) dhcp6_start "$@" ;;
        stop) dhcp6_stop ;;
        status) dhcp6_status ;;
        log) [[ -f $RUN/dhcp6.log ]] || die "no $RUN/dhcp6.log"; cat "$RUN/dhcp6.log" ;;
        *) die "usage: lab.sh dhcp6 start [--server kea|isc|wide] [--pool PREFIX/LEN] [--delegated-len N] [--t1 S] [--t2 S] [--preferred S] [--valid S] [--aftr-name NAME] [--rapid-commit yes|no] [--duid HEX] | stop | status | log" ;;
    esac
}

# pool_info POOL DLEN -> "NETWORK PLEN DLEN FIRST LAST" (first/last delegated prefix)
pool_info() {
    python3 - "$1" "$2" <<'PY'
import ipaddress, sys
try:
    n = ipaddress.IPv6Network(sys.argv[1], strict=True)
except ValueError as e:
    sys.exit(f"bad --pool {sys.argv[1]!r}: {e}")
d = int(sys.argv[2]) if sys.argv[2] else n.prefixlen
if not n.prefixlen <= d <= 128:
    sys.exit(f"--delegated-len {d} must be between the pool length {n.prefixlen} and 128")
last = ipaddress.IPv6Address(int(n.broadcast_address) & ~((1 << (128 - d)) - 1))
print(n.network_address, n.prefixlen, d, n.network_address, last)
PY
}

dhcp6_stop() {
    local k was=
    for k in kea isc wide; do
        if pid_alive "dhcp6-$k"; then was=$k; fi
        stop_pidfile "dhcp6-$k"
    done
    wait_until 30 hgw_port_free 547 || warn "dhcp6: udp port 547 still in use in hgw"
    # the pool route stays: delegated prefixes are valid until their lifetime ends
    if [[ -n $was ]]; then say "dhcp6: $was stopped"; else say "dhcp6: not running"; fi
    [[ -f $RUN/dhcp6.state ]] && sed -i 's/^running=.*/running=no/' "$RUN/dhcp6.state"
    return 0
}

# hgw_route_pool POOL: route POOL to the router's link-local, drop the previous pool's route
hgw_route_pool() {
    local new=$1 old
    old=$(cat "$RUN/dhcp6.route" 2>/dev/null || true)
    if [[ -n $old && $old != "$new" ]]; then
        nsx hgw ip -6 route del "$old" via "$ROUTER_WAN_LL" dev down0 2>/dev/null || true
    fi
    nsx hgw ip -6 route replace "$new" via "$ROUTER_WAN_LL" dev down0
    echo "$new" >"$RUN/dhcp6.route"
}

dhcp6_start() {
    local server=kea pool=$DHCP6_POOL dlen= t1=1800 t2=2880 pref=3600 valid=7200
    local aftr=$AFTR_NAME rapid=yes duid=$ROUTER_DUID_LL stateless=no
    while (($#)); do
        if [[ $1 == --stateless ]]; then # no delegation at all (a line without PD)
            stateless=yes
            shift
            continue
        fi
        [[ $# -ge 2 ]] || die "dhcp6 start: option '$1' needs a value"
        case $1 in
            --server) server=$2 ;;
            --pool) pool=$2 ;;
            --delegated-len) dlen=$2 ;;
            --t1) t1=$2 ;;
            --t2) t2=$2 ;;
            --preferred) pref=$2 ;;
            --valid) valid=$2 ;;
            --aftr-name) aftr=$2 ;;
            --rapid-commit) rapid=$2 ;;
            --duid) duid=$2 ;;
            *) die "dhcp6 start: unknown option '$1'" ;;
        esac
        shift 2
    done
    case $server in kea | isc | wide) ;; *) die "--server must be kea, isc or wide" ;; esac
    [[ $stateless == no || $server == kea ]] || die "--stateless is kea only"
    case $rapid in yes | no) ;; *) die "--rapid-commit must be yes or no" ;; esac
    [[ -z $dlen ]] || need_uint --delegated-len "$dlen"
    need_uint --t1 "$t1"; need_uint --t2 "$t2"; need_uint --preferred "$pref"; need_uint --valid "$valid"
    ((pref <= valid)) || die "--preferred ($pref) must not exceed --valid ($valid)"
    [[ -z $aftr || $aftr =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.?$ ]] || die "bad --aftr-name '$aftr'"
    duid=$(tr 'A-F' 'a-f' <<<"$duid")
    [[ $duid =~ ^[0-9a-f]{2}(:?[0-9a-f]{2})+$ ]] || die "bad --duid '$duid' (hex bytes, e.g. $ROUTER_DUID_LL)"
    duid=$(sed 's/://g; s/../&:/g; s/:$//' <<<"$duid")
    local info net plen first last
    info=$(pool_info "$pool" "$dlen") || die "dhcp6 start: invalid pool"
    read -r net plen dlen first last <<<"$info"
    pool=$net/$plen

    dhcp6_stop >/dev/null
    # each server kind has its own lease file; start from scratch when the pool or the
    # lifetimes changed (Kea hands out an existing lease with its old lifetimes)
    local leases stamp="$pool $dlen $pref $valid $stateless"
    case $server in
        kea) leases=$RUN/dhcp6-kea-leases.csv ;;
        isc) leases=$RUN/dhcp6-isc.leases ;;
        wide) leases=$RUN/dhcp6-wide.leases ;;   # dhcp6s keeps no lease file: stamp only
    esac
    if [[ $(cat "$leases.pool" 2>/dev/null || true) != "$stamp" ]]; then
        rm -f "$leases" "$leases".*
        echo "$stamp" >"$leases.pool"
    fi
    # dhcp6.log: the current server only; the logs of earlier ones are appended to dhcp6.log.old
    if [[ -s $RUN/dhcp6.log ]]; then
        cat "$RUN/dhcp6.log" >>"$RUN/dhcp6.log.old"
        printf '==== %s lab.sh dhcp6 start --server %s --pool %s (earlier log above)\n' \
            "$(date '+%F %T')" "$server" "$pool" >>"$RUN/dhcp6.log.old"
    fi
    : >"$RUN/dhcp6.log"

    local conf
    case $server in
        kea)
            conf=$RUN/dhcp6-kea.json
            local aftr_opt="" rc=false
            [[ -z $aftr ]] || aftr_opt=$',\n        { "name": "aftr-name", "data": "'"$aftr"'" }'
            [[ $rapid == no ]] || rc=true
            local pdpool=""
            [[ $stateless == yes ]] ||
                pdpool=$(printf '\n                { "prefix": "%s", "prefix-len": %s, "delegated-len": %s }\n            ' \
                    "$net" "$plen" "$dlen")
            render "$HGW_TPL/kea-dhcp6.json.in" "$conf" RUN="$RUN" PDPOOL="$pdpool" \
                T1="$t1" T2="$t2" PREFERRED="$pref" VALID="$valid" RAPID="$rc" \
                AFTR_OPTION="$aftr_opt"
            nsx hgw env KEA_LOCKFILE_DIR=none KEA_PIDFILE_DIR="$RUN" kea-dhcp6 -t "$conf" \
                >"$RUN/dhcp6.configtest" 2>&1 ||
                { tail -n 20 "$RUN/dhcp6.configtest" >&2; die "kea-dhcp6: bad config $conf"; }
            rm -f "$RUN"/dhcp6-kea.kea-dhcp6.pid
            start_bg_to "$RUN/dhcp6.log" dhcp6-kea hgw kea-dhcp6 \
                env KEA_LOCKFILE_DIR=none KEA_PIDFILE_DIR="$RUN" kea-dhcp6 -c "$conf"
            ;;
        isc)
            conf=$RUN/dhcp6-isc.conf
            local aftr_line="" rapid_line=""
            [[ -z $aftr ]] || aftr_line="option dhcp6.aftr-name \"${aftr%.}\";"
            [[ $rapid == no ]] || rapid_line="option dhcp6.rapid-commit;"
            render "$HGW_TPL/dhcpd6.conf.in" "$conf" PLOW="$first" PHIGH="$last" DLEN="$dlen" \
                T1="$t1" T2="$t2" PREFERRED="$pref" VALID="$valid" AFTR="$aftr_line" RAPID="$rapid_line"
            touch "$leases"
            rm -f "$RUN/dhcp6-isc.pidfile"   # dhcpd refuses to start if its pid (maybe a zombie) exists
            nsx hgw dhcpd -6 -t -q -cf "$conf" >"$RUN/dhcp6.configtest" 2>&1 ||
                { tail -n 20 "$RUN/dhcp6.configtest" >&2; die "dhcpd: bad config $conf"; }
            start_bg_to "$RUN/dhcp6.log" dhcp6-isc hgw dhcpd \
                dhcpd -6 -f -d -cf "$conf" -lf "$leases" -pf "$RUN/dhcp6-isc.pidfile" down0
            ;;
        wide)
            conf=$RUN/dhcp6-wide.conf
            local rapid_line=""
            [[ $rapid == no ]] || rapid_line="allow rapid-commit;"
            render "$HGW_TPL/dhcp6s.conf.in" "$conf" DUID="$duid" PREFIX="$first/$dlen" \
                PREFERRED="$pref" VALID="$valid" RAPID="$rapid_line"
            rm -f "$RUN/dhcp6-wide.pidfile"
            start_bg_to "$RUN/dhcp6.log" dhcp6-wide hgw dhcp6s \
                dhcp6s -f -D -c "$conf" -P "$RUN/dhcp6-wide.pidfile" -k "$RUN/dhcp6s.key" down0
            ;;
    esac
    if ! wait_until 100 hgw_listens_udp 547 || ! pid_alive "dhcp6-$server"; then
        tail -n 30 "$RUN/dhcp6.log" >&2 || true
        die "dhcp6: $server did not start (log $RUN/dhcp6.log)"
    fi
    hgw_route_pool "$pool"
    cat >"$RUN/dhcp6.state" <<EOS
running=yes
server=$server
pool=$pool
delegated_len=$dlen
first=$first/$dlen
t1=$t1
t2=$t2
preferred=$pref
valid=$valid
aftr_name=$aftr
rapid_commit=$rapid
duid=$duid
config=$conf
leases=$leases
EOS
    local extras="T1 $t1 T2 $t2 preferred $pref valid $valid, aftr-name '${aftr}', rapid-commit $rapid"
    [[ $server != wide ]] || extras="only $first/$dlen to DUID $duid, preferred $pref valid $valid,\
 T1/T2 = 0.5/0.8 x preferred (fixed by dhcp6s), no aftr-name, rapid-commit $rapid"
    say "dhcp6: $server running on hgw down0 (pid $(cut -d' ' -f1 "$PIDS/dhcp6-$server.pid")):" \
        "pool $pool delegated /$dlen (first $first/$dlen), $extras;" \
        "route $pool via $ROUTER_WAN_LL dev down0; log $RUN/dhcp6.log"
}

dhcp6_status() {
    local k any=0
    for k in kea isc wide; do
        if pid_alive "dhcp6-$k"; then
            any=1
            echo "dhcp6: $k running (pid $(cut -d' ' -f1 "$PIDS/dhcp6-$k.pid")), log $RUN/dhcp6.log"
        fi
    done
    ((any)) || echo "dhcp6: not running"
    [[ -f $RUN/dhcp6.state ]] && sed 's/^/   /' "$RUN/dhcp6.state"
    if ns_exists hgw; then
        echo "   hgw routes on down0:"
        nsx hgw ip -6 route show dev down0 | sed 's/^/     /'
    fi
}

# ---- DNS (dnsmasq: authoritative-only answers, no upstream, no DHCP)
DNS_USAGE="usage: lab.sh dns start [--aftr ADDR] [--ttl S] | stop | status | query NAME [A|AAAA|CNAME|TXT]
       lab.sh dns add txt NAME TEXT | add host NAME ADDR... | del txt|host NAME | records"
cmd_dns() {
    local sub=${1:-status}
    (($#)) && shift
    [[ $sub == status || $sub == records ]] || need_lab
    case $sub in
        start) dns_start "$@" ;;
        stop) stop_pidfile dns; rm -f "$RUN/dns.state"; say "dns: stopped" ;;
        query) [[ $# -ge 1 ]] || die "$DNS_USAGE"
            dns_query hgw "$HGW_ADDR" "$1" "${2:-AAAA}" ;;
        add | del) dns_record "$sub" "$@" ;;
        records) cat "$RUN/dns.records" 2>/dev/null || true ;;
        status)
            if pid_alive dns; then
                echo "dns: dnsmasq running (pid $(cut -d' ' -f1 "$PIDS/dns.pid")) on [$HGW_ADDR]:53," \
                    "aftr.lab.example AAAA $(state_get "$RUN/dns.state" aftr) ttl $(state_get "$RUN/dns.state" ttl)," \
                    "log $RUN/dns.log"
            else
                echo "dns: not running"
            fi
            if [[ -s $RUN/dns.records ]]; then sed 's/^/     record /' "$RUN/dns.records"; fi ;;
        *) die "$DNS_USAGE" ;;
    esac
}

# dns_record add|del txt|host NAME [VALUE...]: change the extra records
# (dns.records, one "txt NAME TEXT" or "host NAME ADDR[,ADDR]" per line; they
# survive 'dns start' and 'dns stop', 'up' clears them) and restart dnsmasq
# with the aftr/ttl it had, when it runs: dnsmasq cannot add TXT records live.
dns_record() {
    local op=$1 type=${2:-} name=${3:-} value
    [[ $type == txt || $type == host ]] || die "$DNS_USAGE"
    [[ $name =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] || die "dns $op: bad name '$name'"
    shift 3
    touch "$RUN/dns.records"
    # a name has one record of each type: add replaces, del removes
    awk -v t="$type" -v n="$name" '!($1 == t && $2 == n)' "$RUN/dns.records" >"$RUN/dns.records.tmp"
    if [[ $op == add ]]; then
        (($#)) || die "dns add $type $name: a value is needed"
        if [[ $type == txt ]]; then
            value="$*"
            [[ $value != *,* && $value != *'"'* ]] || die "dns add txt: no commas or quotes in the text, please"
        else
            local a
            for a in "$@"; do
                python3 -c 'import ipaddress,sys; ipaddress.ip_address(sys.argv[1])' "$a" 2>/dev/null ||
                    die "dns add host: '$a' is not an address"
            done
            value=$(IFS=,; echo "$*")
        fi
        printf '%s %s %s\n' "$type" "$name" "$value" >>"$RUN/dns.records.tmp"
    fi
    mv "$RUN/dns.records.tmp" "$RUN/dns.records"
    if pid_alive dns; then
        local aftr ttl
        aftr=$(state_get "$RUN/dns.state" aftr)
        ttl=$(state_get "$RUN/dns.state" ttl)
        dns_start --aftr "${aftr:-$AFTR_ADDR}" --ttl "${ttl:-60}" >/dev/null
    fi
    say "dns: $op $type $name${value:+ $value}"
}

dns_start() {
    local aftr=$AFTR_ADDR ttl=60
    while (($#)); do
        case $1 in
            --aftr) aftr=${2:-}; shift 2 || die "--aftr needs a value" ;;
            --ttl) ttl=${2:-}; shift 2 || die "--ttl needs a value" ;;
            *) die "dns start: unknown option '$1'" ;;
        esac
    done
    need_uint --ttl "$ttl"
    python3 -c 'import ipaddress,sys; ipaddress.IPv6Address(sys.argv[1])' "$aftr" 2>/dev/null ||
        die "--aftr must be an IPv6 address, got '$aftr'"
    # the extra records of 'dns add' (see dns_record)
    local extra=() type name value
    if [[ -f $RUN/dns.records ]]; then
        while read -r type name value; do
            case $type in
                txt) extra+=("--txt-record=$name,$value") ;;
                host) extra+=("--host-record=$name,$value,$ttl") ;;
            esac
        done <"$RUN/dns.records"
    fi
    stop_pidfile dns
    wait_until 30 hgw_port_free 53 || warn "dns: udp port 53 still in use in hgw"
    start_bg dns hgw dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null \
        --no-resolv --no-hosts --no-poll --bind-interfaces --listen-address="$HGW_ADDR" --port=53 \
        --pid-file="$RUN/dnsmasq.pid" --log-facility="$RUN/dns.log" --log-queries --local-ttl="$ttl" \
        --host-record="aftr.lab.example,$aftr,$ttl" --cname="gw.lab.example,aftr.lab.example,$ttl" \
        --host-record="www.lab.example,$V4_SERVER,$V6_SERVER,$ttl" "${extra[@]}" --address=/#/
    if ! wait_until 50 hgw_listens_udp 53 || ! pid_alive dns; then
        tail -n 20 "$RUN/dns.out" "$RUN/dns.log" >&2 2>/dev/null || true
        die "dns: dnsmasq did not start"
    fi
    printf 'aftr=%s\nttl=%s\n' "$aftr" "$ttl" >"$RUN/dns.state"
    say "dns: dnsmasq on [$HGW_ADDR]:53 (pid $(cut -d' ' -f1 "$PIDS/dns.pid")): aftr.lab.example AAAA $aftr," \
        "gw.lab.example CNAME aftr.lab.example, www.lab.example A $V4_SERVER AAAA $V6_SERVER," \
        "ttl ${ttl}s, NXDOMAIN otherwise; log $RUN/dns.log"
}

# --------------------------------------------------------------- LAN hosts
# lan2..lan9: hosts behind the LAN switch that configure themselves like home
# devices (kernel SLAAC, dhcpcd, udhcpc, ISC dhclient). Everything of a host is in
# $RUN/lanhosts/NAME (see README.md "LAN hosts"); its clients' pid files are there
# too, so 'down' and 'lanhost del' stop them.
LH_CLIENTS=(dhcpcd udhcpc dhclient4 dhclient6)
LH_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin)   # clients and their scripts see only their own variables
LH_USAGE="usage: lab.sh lanhost add NAME [--mac MAC] [--ipv6 slaac|off] [--offload off|default] | del NAME | list
       lab.sh lanhost dhcp NAME dhcpcd [-4|-6|both] | udhcpc | dhclient4 | dhclient6 [-S|-N]  [--wait S]
       lab.sh lanhost release NAME [CLIENT] | renew NAME [CLIENT] | stop NAME [CLIENT] | show NAME
       (NAME is lan2..lan9; CLIENT is dhcpcd, udhcpc, dhclient4 or dhclient6)"

lh_dir() { printf '%s/lanhosts/%s' "$RUN" "$1"; }
lh_exists() { ns_exists "$1" && [[ -f $RUN/lanhosts/$1/host.state ]]; }
lh_need() { # NAME
    [[ $1 =~ ^lan[2-9]$ ]] || die "lanhost: NAME must be lan2..lan9, got '$1'"
    lh_exists "$1" || die "lanhost: $1 does not exist (lab.sh lanhost add $1)"
}
lh_names() { # the existing LAN hosts
    local n
    for n in "${LANHOSTS[@]}"; do lh_exists "$n" && echo "$n"; done
    return 0
}
lh_running() { pf_alive "$RUN/lanhosts/$1/$2.pid"; } # NAME CLIENT
lh_clients_running() { # NAME -> the running clients
    local c
    for c in "${LH_CLIENTS[@]}"; do lh_running "$1" "$c" && echo "$c"; done
    return 0
}
# lh_family NAME CLIENT -> 4, 6 or 46: the address families CLIENT configures
lh_family() {
    case $2 in
        udhcpc | dhclient4) echo 4 ;;
        dhclient6) echo 6 ;;
        dhcpcd) state_get "$RUN/lanhosts/$1/dhcpcd.args" family ;;
    esac
}

cmd_lanhost() {
    local sub=${1:-list}
    (($#)) && shift
    [[ $(id -u) -eq 0 ]] || die "must be root"
    case $sub in
        add) lh_add "$@" ;;
        del) [[ $# -eq 1 ]] || die "$LH_USAGE"
            [[ $1 =~ ^lan[2-9]$ ]] || die "lanhost: NAME must be lan2..lan9, got '$1'"
            # also a half-created host (namespace without host.state)
            ns_exists "$1" || [[ -d $(lh_dir "$1") ]] || die "lanhost: $1 does not exist"
            lh_del "$1" ;;
        dhcp) lh_dhcp "$@" ;;
        release | renew | stop)
            [[ $# -ge 1 && $# -le 2 ]] || die "$LH_USAGE"
            lh_need "$1"
            lh_each "$sub" "$@" ;;
        show) [[ $# -eq 1 ]] || die "$LH_USAGE"; lh_need "$1"; lh_show "$1" ;;
        list) lh_list ;;
        *) die "$LH_USAGE" ;;
    esac
}

lh_add() {
    local name=${1:-} mac= ipv6=slaac offload=off
    [[ -n $name ]] || die "$LH_USAGE"
    shift
    while (($#)); do
        case $1 in
            --mac) mac=${2:-}; shift 2 || die "--mac needs a value" ;;
            --ipv6) ipv6=${2:-}; shift 2 || die "--ipv6 needs a value" ;;
            --offload) offload=${2:-}; shift 2 || die "--offload needs a value" ;;
            *) die "lanhost add: unknown option '$1'" ;;
        esac
    done
    [[ $name =~ ^lan[2-9]$ ]] || die "lanhost: NAME must be lan2..lan9, got '$name'"
    ns_exists lansw || die "the lab is not up (run 'lab.sh up' first)"
    ns_exists "$name" && die "lanhost: $name exists already ('lab.sh lanhost del $name' first)"
    local n=${name#lan}
    mac=${mac:-02:00:00:00:01:0$n}
    mac=${mac,,}
    [[ $mac =~ ^[0-9a-f]{2}(:[0-9a-f]{2}){5}$ ]] && ((!(16#${mac:0:2} & 1))) ||
        die "--mac must be a unicast MAC like 02:00:00:00:01:0$n, got '$mac'"
    case $ipv6 in slaac | off) ;; *) die "--ipv6 must be slaac or off" ;; esac
    case $offload in off | default) ;; *) die "--offload must be off or default" ;; esac
    local dir
    dir=$(lh_dir "$name")
    rm -rf "$dir"
    mkdir -p "$dir"
    ip netns add "$name"
    nsx "$name" ip link set lo up
    # a real host: DAD on (kernel defaults), RA/SLAAC by the kernel unless --ipv6 off
    veth lansw "sw-$name" "02:00:00:00:06:0$n" "$name" eth0 "$mac" 1
    # --offload default: the kernel's offloads on eth0 and its port, so its TCP
    # and UDP reach ipoed with partial checksums (through sw-router, which keeps
    # tx checksum on)
    if [[ $offload == default ]]; then
        sw_port "sw-$name" default
    else
        sw_port "sw-$name"
        nsx "$name" ethtool -K eth0 tx off tso off gso off gro off >/dev/null
    fi
    if [[ $ipv6 == slaac ]]; then
        sysctl_ns "$name" net.ipv6.conf.eth0.accept_ra=1 net.ipv6.conf.eth0.autoconf=1
    else
        sysctl_ns "$name" net.ipv6.conf.eth0.accept_ra=0 net.ipv6.conf.eth0.autoconf=0
    fi
    nsx "$name" ip link set eth0 up
    printf 'name=%s\nmac=%s\nipv6=%s\noffload=%s\nport=sw-%s\n' "$name" "$mac" "$ipv6" "$offload" "$name" \
        >"$dir/host.state"
    : >"$dir/events.log"
    # dhclient -6 cannot bind to a tentative link-local: wait for DAD (about 1 s)
    wait_until 50 lh_ll_ready "$name" || warn "lanhost: $name: link-local still tentative after 5 s"
    say "lanhost: $name up: eth0 $mac on lansw port sw-$name, ipv6 $ipv6" \
        "(link-local $(lh_ll "$name")); files in $dir"
}
lh_ll() { nsx "$1" ip -6 -o addr show dev eth0 scope link | awk '{sub(/\/.*/, "", $4); print $4; exit}'; }
lh_ll_ready() {
    [[ -n $(lh_ll "$1") && -z $(nsx "$1" ip -6 -o addr show dev eth0 scope link tentative) ]]
}

lh_del() { # NAME: stop the clients (no release), delete the namespace and its files
    local name=$1 i pids
    lh_stop_clients "$name"
    for i in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(ip netns pids "$name" 2>/dev/null || true)
        [[ -n $pids ]] || break
        if ((i < 6)); then
            echo "$pids" | xargs -r kill -TERM 2>/dev/null || true
        else
            echo "$pids" | xargs -r kill -KILL 2>/dev/null || true
        fi
        sleep 0.2
    done
    ip netns del "$name" 2>/dev/null || true   # takes eth0 and its peer sw-NAME with it
    rm -rf "$(lh_dir "$name")"
    say "lanhost: $name deleted"
}

lh_stop_clients() { # NAME: TERM every client of NAME (dhclient: KILL, so it does not deconfigure)
    local c
    for c in "${LH_CLIENTS[@]}"; do lh_stop_one "$1" "$c"; done
}
lh_stop_one() { # NAME CLIENT
    local dir f
    dir=$(lh_dir "$1")
    f=$dir/$2.pid
    case $2 in dhclient*) stop_pf "$f" KILL ;; *) stop_pf "$f" ;; esac
    # dhcpcd (IPv6) handles RAs itself and sets accept_ra=0: give the kernel back its RA
    # handling as 'lanhost add --ipv6' set it
    if [[ $2 == dhcpcd && -f $dir/dhcpcd.args && $(state_get "$dir/host.state" ipv6) == slaac ]] &&
        ns_exists "$1"; then
        sysctl_ns "$1" net.ipv6.conf.eth0.accept_ra=1 net.ipv6.conf.eth0.autoconf=1
    fi
}
lanhosts_stop_all() { # for 'down': the clients of every LAN host (even half-deleted ones)
    local f
    for f in "$RUN"/lanhosts/*/*.pid; do
        [[ -e $f ]] || continue
        stop_pf "$f" KILL
    done
}

# lh_mnt: run dhcpcd with /run/dhcpcd and /var/lib/dhcpcd bind-mounted from DIR (the
# mount namespace of 'ip netns exec' is private): its pid file, control socket, DUID
# and leases stay in the run directory and hosts do not see each other's files.
LH_MNT='d=$1; shift; mount --bind "$d/dhcpcd.run" /run/dhcpcd && mount --bind "$d/dhcpcd.db" /var/lib/dhcpcd && exec "$@"'
lh_dhcpcd_ctl() { # NAME ARGS...: dhcpcd control command (-k, -N, -n, -x, -U) for NAME's dhcpcd
    local name=$1 dir flag
    shift
    dir=$(lh_dir "$name")
    flag=$(state_get "$dir/dhcpcd.args" flag)
    # shellcheck disable=SC2086 # flag is empty, -4 or -6
    nsx "$name" sh -c "$LH_MNT" sh "$dir" dhcpcd -f "$dir/dhcpcd.conf" $flag "$@" eth0
}

lh_dhcp() {
    local name=${1:-} client=${2:-}
    [[ -n $name && -n $client ]] || die "$LH_USAGE"
    shift 2
    lh_need "$name"
    local dir fam= mode= wait=0 flag=
    dir=$(lh_dir "$name")
    while (($#)); do
        case $client/$1 in
            dhcpcd/-4) fam=4 ;;
            dhcpcd/-6) fam=6 ;;
            dhcpcd/both) fam=46 ;;
            dhclient6/-S) mode=stateless ;;
            dhclient6/-N) mode=stateful ;;
            */--wait) wait=${2:-}; shift ;;
            *) die "lanhost dhcp: unknown option '$1' for $client"$'\n'"$LH_USAGE" ;;
        esac
        shift
    done
    need_uint --wait "$wait"
    case $client in
        dhcpcd) fam=${fam:-46}
            case $fam in 4) flag=-4 ;; 6) flag=-6 ;; esac ;;
        udhcpc | dhclient4) fam=4 ;;
        dhclient6) fam=6; mode=${mode:-stateful} ;;
        *) die "lanhost dhcp: unknown client '$client'"$'\n'"$LH_USAGE" ;;
    esac
    # one client per address family and host (they would fight over the addresses)
    local c f
    for c in $(lh_clients_running "$name"); do
        [[ $c == "$client" ]] && continue
        f=$(lh_family "$name" "$c")
        [[ $f == *4* && $fam == *4* || $f == *6* && $fam == *6* ]] &&
            die "lanhost: $name already runs $c for IPv${f/46/4+6}; 'lab.sh lanhost stop $name $c' first"
    done
    lh_stop_one "$name" "$client"   # restart
    rm -f "$dir/$client".{lease4,lease6,ra,env,envlog,log}
    printf 'client=%s\nfamily=%s\nflag=%s\nmode=%s\nstarted=%s\n' "$client" "$fam" "$flag" "$mode" \
        "$(date +%s)" >"$dir/$client.args"
    printf '#!/bin/sh\nexec %q %q %q "$@"\n' "$LAN_TPL/client-hook.sh" "$client" "$dir" >"$dir/$client.hook"
    chmod 755 "$dir/$client.hook"
    lh_start "$name" "$client"
    if ((wait)); then
        if ! wait_until $((wait * 10)) lh_configured "$name" "$client"; then
            tail -n 20 "$dir/$client.log" >&2 || true
            die "lanhost: $name: $client got no lease within ${wait}s (log $dir/$client.log)"
        fi
    fi
    say "lanhost: $name: $client running (pid $(cut -d' ' -f1 "$dir/$client.pid")," \
        "IPv${fam/46/4+6}${mode:+ $mode}); log $dir/$client.log, results $dir/$client.*"
}

# lh_start NAME CLIENT: (re)start CLIENT with the arguments recorded in CLIENT.args
lh_start() {
    local name=$1 client=$2 dir flag mode
    dir=$(lh_dir "$name")
    flag=$(state_get "$dir/$client.args" flag)
    mode=$(state_get "$dir/$client.args" mode)
    case $client in
        dhcpcd)
            render "$LAN_TPL/dhcpcd.conf.in" "$dir/dhcpcd.conf" NAME="$name" DIR="$dir"
            mkdir -p "$dir/dhcpcd.run" "$dir/dhcpcd.db"
            if [[ ! -d /run/dhcpcd ]]; then   # the mount point (empty); 'down' removes it again
                mkdir -p /run/dhcpcd
                touch "$RUN/run-dhcpcd.created"
            fi
            rm -rf "${dir:?}/dhcpcd.run/"*   # stale pid file / socket of a killed dhcpcd
            # shellcheck disable=SC2086
            start_bg_pf "$dir/dhcpcd.log" "$dir/dhcpcd.pid" "$name" dhcpcd \
                "${LH_ENV[@]}" sh -c "$LH_MNT" sh "$dir" dhcpcd -B -d -f "$dir/dhcpcd.conf" $flag eth0 ;;
        udhcpc)
            start_bg_pf "$dir/udhcpc.log" "$dir/udhcpc.pid" "$name" "$dir/udhcpc.hook" \
                "${LH_ENV[@]}" busybox udhcpc -f -i eth0 -s "$dir/udhcpc.hook" -x "hostname:$name" ;;
        dhclient4)
            render "$LAN_TPL/dhclient4.conf.in" "$dir/dhclient4.conf" NAME="$name"
            start_bg_pf "$dir/dhclient4.log" "$dir/dhclient4.pid" "$name" "$dir/dhclient4.leases" \
                "${LH_ENV[@]}" dhclient -4 -d -v -cf "$dir/dhclient4.conf" -lf "$dir/dhclient4.leases" \
                -pf "$dir/dhclient4.pidfile" -sf "$dir/dhclient4.hook" eth0 ;;
        dhclient6)
            render "$LAN_TPL/dhclient6.conf.in" "$dir/dhclient6.conf" NAME="$name"
            local m=-N
            [[ $mode == stateless ]] && m=-S
            start_bg_pf "$dir/dhclient6.log" "$dir/dhclient6.pid" "$name" "$dir/dhclient6.leases" \
                "${LH_ENV[@]}" dhclient -6 "$m" -d -v -D LL -cf "$dir/dhclient6.conf" -lf "$dir/dhclient6.leases" \
                -pf "$dir/dhclient6.pidfile" -sf "$dir/dhclient6.hook" eth0 ;;
    esac
    sleep 0.3
    # dhclient -6 -S exits after the Information-request's Reply ("PRC: Done.")
    if ! lh_running "$name" "$client" && ! lh_configured "$name" "$client"; then
        tail -n 20 "$dir/$client.log" >&2 || true
        die "lanhost: $name: $client did not start (log $dir/$client.log)"
    fi
}

# lh_configured NAME CLIENT: the client has its result (lease4 bound; IPv6: lease6
# bound/informed, for dhcpcd a SLAAC address from an RA or a DHCPv6 lease)
lh_configured() {
    local dir fam
    dir=$(lh_dir "$1")
    fam=$(lh_family "$1" "$2")
    if [[ $fam == *4* ]]; then
        [[ $(state_get "$dir/$2.lease4" state) == bound ]] || return 1
    fi
    if [[ $fam == *6* ]]; then
        if [[ $2 == dhcpcd ]]; then
            [[ -n $(state_get "$dir/dhcpcd.ra" slaac) || $(state_get "$dir/dhcpcd.lease6" state) == bound ]] ||
                return 1
        else
            [[ $(state_get "$dir/$2.lease6" state) =~ ^(bound|informed)$ ]] || return 1
        fi
    fi
}

# lh_each release|renew|stop NAME [CLIENT]
lh_each() {
    local op=$1 name=$2 only=${3:-} c any=0
    if [[ -n $only ]]; then
        [[ " ${LH_CLIENTS[*]} " == *" $only "* ]] || die "lanhost: unknown client '$only'"
    fi
    local cs
    cs=$(lh_clients_running "$name" | tr '\n' ' ')
    # a finished dhclient -6 -S (one-shot) can be renewed: it is started again
    if [[ $op == renew && $cs != *dhclient6* &&
        $(state_get "$(lh_dir "$name")/dhclient6.args" mode) == stateless ]]; then
        cs+=" dhclient6"
    fi
    if [[ -n $only && " $cs " != *" $only "* ]]; then
        die "lanhost: $only is not running in $name"
    fi
    for c in $cs; do
        [[ -z $only || $c == "$only" ]] || continue
        any=1
        "lh_$op" "$name" "$c"
    done
    ((any)) || say "lanhost: $name: no client running"
}

lh_events() { wc -l <"$(lh_dir "$1")/events.log"; } # NAME -> number of hook calls so far
lh_event_since() { # NAME N ERE: a hook call after the first N matches ERE
    tail -n +"$(($2 + 1))" "$(lh_dir "$1")/events.log" | grep -qE -- "$3"
}

lh_release() { # NAME CLIENT: release the lease(s) and stop the client
    local name=$1 c=$2 dir n pid
    dir=$(lh_dir "$name")
    n=$(lh_events "$name")
    case $c in
        dhcpcd)
            # RELEASE (v4) / RELEASE6 (v6); dhcpcd exits when no interface is left
            lh_dhcpcd_ctl "$name" -k >>"$dir/dhcpcd.log" 2>&1 || warn "lanhost: $name: dhcpcd -k failed"
            read -r pid _ <"$dir/dhcpcd.pid"
            wait_until 50 eval '! proc_running '"$pid" || true
            # dhcpcd reports its IPv4 release as STOP: record that it was a release
            if [[ -f $dir/dhcpcd.lease4 ]] && grep -q 'releasing lease of' "$dir/dhcpcd.log"; then
                sed -i 's/^state=.*/state=released/' "$dir/dhcpcd.lease4"
            fi ;;
        udhcpc)
            # SIGUSR2: DHCPRELEASE, then the script's "deconfig"; then stop it
            read -r pid _ <"$dir/udhcpc.pid"
            kill -USR2 "$pid"
            # the script only sees "deconfig": record that it followed a release
            if wait_until 30 lh_event_since "$name" "$n" ' udhcpc deconfig' && [[ -f $dir/udhcpc.lease4 ]]; then
                sed -i 's/^state=.*/state=released/' "$dir/udhcpc.lease4"
            fi ;;
        dhclient4 | dhclient6)
            # dhclient -r: stops the running dhclient (pid file), sends RELEASE, script RELEASE(6)
            local fam=-4 m=() conf
            conf=$dir/$c.conf
            if [[ $c == dhclient6 ]]; then
                fam=-6
                m=(-D LL)
                [[ $(state_get "$dir/$c.args" mode) == stateless ]] && m+=(-S) || m+=(-N)
            fi
            nsx "$name" dhclient "$fam" "${m[@]}" -r -v -cf "$conf" -lf "$dir/$c.leases" \
                -pf "$dir/$c.pidfile" -sf "$dir/$c.hook" eth0 >>"$dir/$c.log" 2>&1 ||
                warn "lanhost: $name: dhclient $fam -r failed (log $dir/$c.log)" ;;
    esac
    lh_stop_one "$name" "$c"
    say "lanhost: $name: $c released and stopped"
}

lh_renew() { # NAME CLIENT
    local name=$1 c=$2 dir pid
    dir=$(lh_dir "$name")
    case $c in
        dhcpcd)
            # dhcpcd -N: RENEW (unicast DHCPREQUEST) for IPv4, RENEW for DHCPv6 (not -n,
            # which reloads the config and rebinds: INIT-REBOOT)
            lh_dhcpcd_ctl "$name" -N >>"$dir/dhcpcd.log" 2>&1 || die "lanhost: $name: dhcpcd -N failed"
            say "lanhost: $name: dhcpcd -N sent (renew)" ;;
        udhcpc)
            read -r pid _ <"$dir/udhcpc.pid"
            kill -USR1 "$pid"
            say "lanhost: $name: udhcpc SIGUSR1 sent (renew)" ;;
        dhclient4 | dhclient6)
            # ISC dhclient has no renew command: kill it (SIGKILL: no STOP script, the address
            # stays) and start it again from its lease file -> INIT-REBOOT REQUEST (dhclient4),
            # CONFIRM or RENEW (dhclient6 -N), a new Information-request (dhclient6 -S)
            stop_pf "$dir/$c.pid" KILL
            lh_start "$name" "$c"
            say "lanhost: $name: $c restarted from its lease file (pid $(cut -d' ' -f1 "$dir/$c.pid"))" ;;
    esac
}

lh_stop() { # NAME CLIENT: stop without releasing
    lh_stop_one "$1" "$2"
    say "lanhost: $1: $2 stopped (no release)"
}

lh_show() {
    local name=$1 dir f c
    dir=$(lh_dir "$name")
    echo "== $name: $(tr '\n' ' ' <"$dir/host.state")"
    for c in "${LH_CLIENTS[@]}"; do
        [[ -f $dir/$c.args ]] || continue
        if lh_running "$name" "$c"; then
            echo "   $c: running (pid $(cut -d' ' -f1 "$dir/$c.pid")) $(grep -E '^(family|mode)=' "$dir/$c.args" | tr '\n' ' ')"
        else
            echo "   $c: not running"
        fi
    done
    echo "== ip -4 addr"
    nsx "$name" ip -4 addr show dev eth0 | sed 's/^/   /'
    echo "== ip -6 addr"
    nsx "$name" ip -6 addr show dev eth0 | sed 's/^/   /'
    echo "== ip -4 route"
    nsx "$name" ip -4 route show | sed 's/^/   /'
    echo "== ip -6 route"
    nsx "$name" ip -6 route show | sed 's/^/   /'
    for f in "$dir"/*.lease4 "$dir"/*.lease6 "$dir"/*.ra; do
        [[ -e $f ]] || continue
        echo "== $f"
        sed 's/^/   /' "$f"
    done
    if [[ -s $dir/events.log ]]; then
        echo "== $dir/events.log (last 10)"
        tail -n 10 "$dir/events.log" | sed 's/^/   /'
    fi
}

lh_list() {
    local n dir
    for n in $(lh_names); do
        dir=$(lh_dir "$n")
        printf '%s mac=%s ipv6=%s clients=%s\n' "$n" "$(state_get "$dir/host.state" mac)" \
            "$(state_get "$dir/host.state" ipv6)" "$(lh_clients_running "$n" | paste -sd, -)"
    done
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
    for ns in "${NAMESPACES[@]}" $(lh_names); do
        ns_exists "$ns" && echo "   netns $ns pids: $(ip netns pids "$ns" | tr '\n' ' ')"
    done
    echo "== hgw peers"
    { radvd_status; dhcp6_status; cmd_dns status; } | sed 's/^/   /'
    echo "== LAN hosts (lab.sh lanhost show NAME for details)"
    local hosts
    hosts=$(lh_list)
    if [[ -n $hosts ]]; then sed 's/^/   /' <<<"$hosts"; else echo "   none"; fi
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
    if [[ -f $RUN/br-stats.json ]] || pid_alive br; then
        echo "== br (MAP-E BR emulator, $RUN/br-stats.json)"
        br_status | sed 's/^/   /'
    fi
    if [[ -f $RUN/ipip-stats.json ]] || pid_alive ipip; then
        echo "== ipip (fixed-IPv4 tunnel end, $RUN/ipip-stats.json)"
        ipip_status | sed 's/^/   /'
    fi
    if [[ -f $RUN/update-stats.json ]] || pid_alive update; then
        echo "== update server ($RUN/update-stats.json)"
        cmd_update status | sed 's/^/   /'
    fi
    if [[ -f $RUN/hb46pp-stats.json ]] || pid_alive hb46pp; then
        echo "== hb46pp server ($RUN/hb46pp-stats.json)"
        cmd_hb46pp status | sed 's/^/   /'
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

# ---- hgw peer checks (used by selftest and peers-selftest)
has() { grep -qE -- "$2" <<<"$1" || { printf '        no match for /%s/\n' "$2"; return 1; }; } # TEXT ERE

# dns_query NS SERVER NAME [TYPE]: one UDP query; prints "rcode=RCODE" then "NAME TTL TYPE DATA" lines
dns_query() {
    nsx "$1" python3 - "$2" "$3" "${4:-AAAA}" <<'PY'
import random, socket, struct, sys
server, name, qtype = sys.argv[1], sys.argv[2], sys.argv[3].upper()
TYPES = {"A": 1, "CNAME": 5, "TXT": 16, "AAAA": 28}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
tid = random.randrange(1 << 16)
qname = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
q = struct.pack("!HHHHHH", tid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", TYPES[qtype], 1)
s = socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(q, (server, 53))
try:
    r = s.recv(4096)
except OSError as e:
    sys.exit(f"no answer from {server}: {e}")
def rname(off):
    labels, end = [], None
    while True:
        n = r[off]
        if n & 0xC0 == 0xC0:
            end = off + 2 if end is None else end
            off = ((n & 0x3F) << 8) | r[off + 1]
            continue
        off += 1
        if n == 0:
            return ".".join(labels), (off if end is None else end)
        labels.append(r[off:off + n].decode())
        off += n
rid, flags, qd, an = struct.unpack("!HHHH", r[:8])
if rid != tid:
    sys.exit("answer with a wrong transaction id")
print("rcode=" + RCODES.get(flags & 0xF, str(flags & 0xF)))
off = 12
for _ in range(qd):
    off = rname(off)[1] + 4
for _ in range(an):
    n, off = rname(off)
    t, _, ttl, ln = struct.unpack("!HHIH", r[off:off + 10])
    off += 10
    d = r[off:off + ln]
    if t == 16:   # TXT: character-strings, each after its length byte
        parts, i = [], 0
        while i < len(d):
            parts.append(d[i + 1:i + 1 + d[i]].decode(errors="replace"))
            i += 1 + d[i]
        v = "".join(parts)
    else:
        v = (socket.inet_ntop(socket.AF_INET6, d) if t == 28 else socket.inet_ntop(socket.AF_INET, d)
             if t == 1 else rname(off)[0] if t == 5 else d.hex())
    off += ln
    print(n, ttl, {1: "A", 5: "CNAME", 16: "TXT", 28: "AAAA"}.get(t, t), v)
PY
}

# dhclient (ISC, -6 -P, DUID-LL of wan0) in the router namespace as the PD client
DHCLIENT_TAG=
dhclient_begin() { # TAG
    DHCLIENT_TAG=$1
    rm -f "$RUN/dhclient6-$1.leases" "$RUN/dhclient6-$1.out"
    start_bg_to "$RUN/dhclient6-$1.out" dhclient router dhclient dhclient -6 -P -d -v -D LL \
        -cf "$HGW_TPL/dhclient6.conf" -lf "$RUN/dhclient6-$1.leases" -pf "$RUN/dhclient6.pidfile" \
        -sf /bin/true wan0
}
dhclient_end() { stop_pidfile dhclient; }
lease_text() { cat "$RUN/dhclient6-$DHCLIENT_TAG.leases" 2>/dev/null || true; }
lease_prefix() { lease_text | sed -n 's/^ *iaprefix \([^ ]*\) {.*/\1/p' | tail -n 1; }
lease_last() { lease_text | sed -n "s/^ *$1 \([0-9]*\);.*/\1/p" | tail -n 1; } # KEYWORD
has_lease() { [[ -n $(lease_prefix) ]]; }
dhcp6_log_has() { grep -qE -- "$1" "$RUN/dhcp6.log" 2>/dev/null; } # ERE
count_renews() { grep -c 'XMT: Renew on wan0' "$RUN/dhclient6-$DHCLIENT_TAG.out" 2>/dev/null || true; }
two_renews() { (($(count_renews) >= 2)); }

# dhcp6_pd_check LABEL WANT [START ARGS...]: (re)start the server, get a delegation with dhclient
dhcp6_pd_check() {
    local label=$1 want=$2; shift 2
    dhcp6_start "$@" >/dev/null
    dhclient_begin "$label"
    wait_until 150 has_lease || true
    dhclient_end
    check "$label: dhclient -6 -P got $(lease_prefix) (want $want)" eq "$(lease_prefix)" "$want"
}

peers_checks() { # needs wan0 in the router namespace with $ROUTER_WAN_LL and $B4_ADDR/64
    local out c missing=0
    for c in rdisc6 dhclient; do
        command -v "$c" >/dev/null 2>&1 || { warn "peers: command '$c' missing"; missing=1; }
    done
    check "peers: rdisc6 (ndisc6) and dhclient (isc-dhcp-client) installed" test "$missing" = 0
    ((missing)) && return 0

    say "peers: radvd on hgw down0 (rdisc6 -1 wan0 in the router namespace)"
    out=$(nsx router rdisc6 -1 -r 3 -w 1500 wan0 2>&1 || true)
    printf '%s\n' "$out" >"$RUN/peers-rdisc6.out"
    check "RA: M=1 (Stateful address conf. Yes)" has "$out" 'Stateful address conf\. +: +Yes'
    check "RA: O=1 (Stateful other conf. Yes)" has "$out" 'Stateful other conf\. +: +Yes'
    check "RA: router lifetime 1800" has "$out" 'Router lifetime +: +1800 '
    check "RA: prefix 2001:db8:0:100::/64, on-link, autonomous" has "$(tr '\n' ' ' <<<"$out")" \
        'Prefix +: 2001:db8:0:100::/64 +On-link +: +Yes +Autonomous address conf\.: +Yes'
    check "RA: RDNSS $HGW_ADDR" has "$out" "Recursive DNS server +: $HGW_ADDR\$"
    check "RA: DNSSL lab.example" has "$out" 'DNS search list +: lab\.example'
    check "RA: MTU 1500" has "$out" 'MTU +: +1500 bytes'
    check "RA: from $HGW_LL" has "$out" "^ from $HGW_LL\$"

    say "peers: dnsmasq on [$HGW_ADDR]:53 (queries from the router namespace)"
    out=$(dns_query router "$HGW_ADDR" aftr.lab.example AAAA 2>&1 || true)
    check "DNS: aftr.lab.example AAAA $AFTR_ADDR, ttl 60" eq "$out" \
        $'rcode=NOERROR\naftr.lab.example 60 AAAA '"$AFTR_ADDR"
    out=$(dns_query router "$HGW_ADDR" gw.lab.example AAAA 2>&1 || true)
    check "DNS: gw.lab.example CNAME aftr.lab.example" eq "$out" \
        $'rcode=NOERROR\ngw.lab.example 60 CNAME aftr.lab.example\naftr.lab.example 60 AAAA '"$AFTR_ADDR"
    out=$(dns_query router "$HGW_ADDR" nothing.example.com AAAA 2>&1 || true)
    check "DNS: nothing.example.com -> NXDOMAIN" eq "$out" "rcode=NXDOMAIN"
    out=$(dns_query router "$HGW_ADDR" www.lab.example A 2>&1 || true)
    check "DNS: www.lab.example A $V4_SERVER, ttl 60" eq "$out" $'rcode=NOERROR\nwww.lab.example 60 A '"$V4_SERVER"
    out=$(dns_query router "$HGW_ADDR" www.lab.example AAAA 2>&1 || true)
    check "DNS: www.lab.example AAAA $V6_SERVER, ttl 60" eq "$out" $'rcode=NOERROR\nwww.lab.example 60 AAAA '"$V6_SERVER"

    say "peers: DHCPv6-PD (dhclient -6 -P -D LL on wan0 in the router namespace)"
    dhcp6_pd_check kea "$DHCP6_POOL"
    out=$(lease_text)
    check "kea: lease carries aftr-name (option 64) aftr.lab.example" has "$out" 'option dhcp6\.aftr-name "aftr\.lab\.example\.";'
    check "kea: lease carries dns-servers $HGW_ADDR" has "$out" "option dhcp6\\.name-servers $HGW_ADDR;"
    check "kea: lease carries domain-search lab.example" has "$out" 'option dhcp6\.domain-search "lab\.example\.";'
    check "kea: lease T1 1800 T2 2880 preferred 3600 valid 7200" has "$(tr -s ' \n' ' ' <<<"$out")" \
        'renew 1800; rebind 2880; iaprefix [^ ]+ \{ starts [0-9]+; preferred-life 3600; max-life 7200;'
    check "kea log: SOLICIT received" dhcp6_log_has 'DHCP6_PACKET_RECEIVED .*: SOLICIT \(type 1\) received'
    check "kea log: REQUEST received" dhcp6_log_has 'DHCP6_PACKET_RECEIVED .*: REQUEST \(type 3\) received'

    say "peers: Kea with T1 4 T2 8: RENEW, then REBIND while Kea was down"
    local short=(--t1 4 --t2 8 --preferred 20 --valid 30)
    dhcp6_start "${short[@]}" >/dev/null
    dhclient_begin kea-renew
    wait_until 150 has_lease || true
    wait_until 100 dhcp6_log_has 'RENEW \(type 5\) received' || true
    check "kea log: RENEW received (T1 4 s)" dhcp6_log_has 'DHCP6_PACKET_RECEIVED .*: RENEW \(type 5\) received'
    dhcp6_stop >/dev/null
    wait_until 150 two_renews || true    # the next RENEW goes unanswered ...
    dhcp6_start "${short[@]}" >/dev/null # ... so at T2 the client rebinds
    wait_until 150 dhcp6_log_has 'REBIND \(type 6\) received' || true
    check "kea log: REBIND received (after an unanswered RENEW)" \
        dhcp6_log_has 'DHCP6_PACKET_RECEIVED .*: REBIND \(type 6\) received'
    wait_until 30 dhcp6_log_has 'RESPONSE_DATA' || true
    dhclient_end
    check "kea: rebound lease: $(lease_prefix), preferred $(lease_last preferred-life), valid $(lease_last max-life)" \
        eq "$(lease_prefix) $(lease_last preferred-life) $(lease_last max-life)" "$DHCP6_POOL 20 30"

    say "peers: Kea with a /56 pool (delegated-len 56): new prefix, hgw route follows"
    dhcp6_pd_check kea-56 2001:db8:0:200::/56 --pool 2001:db8:0:200::/56 --delegated-len 56
    check "hgw: route 2001:db8:0:200::/56 via $ROUTER_WAN_LL dev down0" has \
        "$(nsx hgw ip -6 route show 2001:db8:0:200::/56)" "via $ROUTER_WAN_LL dev down0"
    check "hgw: old pool route $DHCP6_POOL removed" eq "$(nsx hgw ip -6 route show "$DHCP6_POOL")" ""

    if command -v dhcpd >/dev/null 2>&1; then
        say "peers: ISC dhcpd -6 (second, independent server)"
        dhcp6_pd_check isc "$DHCP6_POOL" --server isc
        check "isc: lease carries aftr-name (option 64) aftr.lab.example" has "$(lease_text)" \
            'option dhcp6\.aftr-name "aftr\.lab\.example\.";'
        check "isc log: Solicit received" dhcp6_log_has '^Solicit message from fe80::ff:fe00:202 port 546'
        check "isc log: Request received" dhcp6_log_has '^Request message from fe80::ff:fe00:202 port 546'
    else
        printf '  SKIP  isc: dhcpd (isc-dhcp-server) not installed\n'
    fi
    if command -v dhcp6s >/dev/null 2>&1; then
        say "peers: WIDE dhcp6s (third server; delegates to DUID-LL $ROUTER_DUID_LL only)"
        dhcp6_pd_check wide "$DHCP6_POOL" --server wide
        check "wide log: solicit received" dhcp6_log_has 'server6_recv: received solicit from fe80::ff:fe00:202%down0'
        check "wide log: request received" dhcp6_log_has 'server6_recv: received request from fe80::ff:fe00:202%down0'
    else
        printf '  SKIP  wide: dhcp6s (wide-dhcpv6-server) not installed\n'
    fi
    say "peers: back to Kea with the defaults"
    dhcp6_start >/dev/null
    check "hgw: route $DHCP6_POOL via $ROUTER_WAN_LL is back, the /56 route is gone" eq \
        "$(nsx hgw ip -6 route show dev down0 | grep -c via)/$(nsx hgw ip -6 route show "$DHCP6_POOL" | grep -c "$ROUTER_WAN_LL")" "1/1"
}

# save_peer_evidence DIR
save_peer_evidence() {
    cp "$RUN"/radvd.conf "$RUN"/radvd.log "$RUN"/dhcp6.log "$RUN"/dhcp6.log.old "$RUN"/dhcp6-*.json \
        "$RUN"/dhcp6-*.conf "$RUN"/dns.log "$RUN"/dhclient6-* "$RUN"/peers-rdisc6.out "$1/" 2>/dev/null || true
}

# selftest_prepare NAME: refuse if ipoed runs; (re)build unless the lab is up and pristine
selftest_prepare() {
    local name=$1 queues=1
    [[ -f $RUN/queues ]] && queues=$(cat "$RUN/queues")
    if ns_exists router; then
        if [[ -n $(ip netns pids router) ]]; then
            die "$name: processes are running in the router namespace (ipoed?): $(ip netns pids router | tr '\n' ' ')"
        fi
        local links
        links=$(nsx router ip -d link show)
        if grep -q 'prog/xdp' <<<"$links"; then
            die "$name: an XDP program is attached in the router namespace; stop ipoed first"
        fi
    fi
    if ! ns_exists router || ! pid_alive aftr || pid_alive br || ! pid_alive http || ! pid_alive radvd ||
        ! pid_alive dns || ! pid_alive dhcp6-kea ||
        [[ $(state_get "$RUN/dhcp6.state" pool) != "$DHCP6_POOL" ]] ||
        [[ $(state_get "$RUN/dhcp6.state" t1) != 1800 ]] ||
        [[ $(state_get "$RUN/radvd.state" lifetime) != 1800 ]] ||
        [[ $(state_get "$RUN/dns.state" ttl) != 60 || $(state_get "$RUN/dns.state" aftr) != "$AFTR_ADDR" ]] ||
        [[ -n $(nsx router ip -o addr show dev lan0) || -n $(nsx router ip -o addr show dev wan0) ]] ||
        ! ns_exists lansw; then
        say "$name: lab not up or not pristine, (re)building it"
        cmd_up --queues "$queues" >/dev/null
    fi
}

cmd_peers_selftest() {
    local queues=1
    selftest_prepare peers-selftest
    [[ -f $RUN/queues ]] && queues=$(cat "$RUN/queues")
    say "peers-selftest: router wan0 gets $ROUTER_WAN_LL and $B4_ADDR/64 for the duration of the test"
    nsx router ip -6 addr add "$ROUTER_WAN_LL"/64 dev wan0 nodad
    nsx router ip -6 addr add "$B4_ADDR"/64 dev wan0 nodad
    FAILS=0
    peers_checks
    rm -rf "$RUN/peers-selftest"
    mkdir -p "$RUN/peers-selftest"
    save_peer_evidence "$RUN/peers-selftest"
    say "peers-selftest: evidence saved in $RUN/peers-selftest/; rebuilding the lab"
    cmd_up --queues "$queues" >/dev/null
    if ((FAILS)); then
        trap - ERR
        warn "peers-selftest: $FAILS check(s) FAILED (evidence in $RUN/peers-selftest/)"
        exit 1
    fi
    say "peers-selftest: ALL PASSED (lab rebuilt, router namespace has no addresses again)"
}

cmd_selftest() {
    local queues=1
    selftest_prepare selftest
    [[ -f $RUN/queues ]] && queues=$(cat "$RUN/queues")

    say "selftest: turning the router namespace into a kernel router + b4ref.py (lab-only B4)"
    nsx router ip addr add 192.168.2.1/24 dev lan0
    nsx router ip -6 addr add 2001:db8:0:111::1/64 dev lan0 nodad
    nsx router ip -6 addr add "$B4_ADDR"/64 dev wan0 nodad
    nsx router ip -6 addr add "$ROUTER_WAN_LL"/64 dev wan0 nodad   # hgw routes the PD pool here
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

    # the hgw peers, seen from the router namespace (wan0 has its link-local and B4 address)
    peers_checks

    # keep the evidence, then rebuild a pristine lab (router without addresses)
    rm -rf "$RUN/selftest"
    mkdir -p "$RUN/selftest"
    cp "$RUN"/aftr-stats.json "$RUN"/aftr.log "$RUN"/http-access.log "$RUN/selftest/" 2>/dev/null || true
    save_peer_evidence "$RUN/selftest"
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

# --------------------------------------------------------------- lan-selftest
LAN_ROUTER_LL=fe80::ff:fe00:201    # EUI-64 link-local of router lan0 (lan-selftest only)
LAN_DOMAIN=lan.example

# lan_router_start: the router namespace as a kernel router with dnsmasq as the LAN's
# DHCPv4 server, RA (SLAAC, RDNSS), DHCPv6 server and DNS proxy (to hgw's dnsmasq)
lan_router_start() {
    nsx router ip addr add 192.168.2.1/24 dev lan0
    nsx router ip -6 addr add "$LAN_ROUTER_LL"/64 dev lan0 nodad
    nsx router ip -6 addr add 2001:db8:0:111::1/64 dev lan0 nodad
    nsx router ip -6 addr add "$B4_ADDR"/64 dev wan0 nodad
    nsx router ip -6 addr add "$ROUTER_WAN_LL"/64 dev wan0 nodad
    nsx router ip -6 route add default via "$HGW_LL" dev wan0
    sysctl_ns router net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    rm -f "$RUN"/lan-dnsmasq.*
    start_bg_to "$RUN/lan-dnsmasq.out" lan-dnsmasq router dnsmasq dnsmasq --keep-in-foreground \
        --conf-file=/dev/null --no-resolv --no-hosts --no-poll --bind-interfaces --interface=lan0 \
        --pid-file="$RUN/lan-dnsmasq.pid" --log-facility="$RUN/lan-dnsmasq.log" --log-queries --log-dhcp \
        --server="$HGW_ADDR" --domain="$LAN_DOMAIN" --local="/$LAN_DOMAIN/" \
        --dhcp-option=option6:domain-search,"$LAN_DOMAIN" \
        --dhcp-range=192.168.2.100,192.168.2.199,255.255.255.0,600 \
        --dhcp-range=::1:0,::1:ffff,constructor:lan0,slaac,64,600 \
        --enable-ra --ra-param=lan0,10,600 \
        --dhcp-leasefile="$RUN/lan-dnsmasq.leases" --dhcp-authoritative
    if ! wait_until 50 eval '[[ -n $(nsx router ss -Hlun "sport = :67") ]]' || ! pid_alive lan-dnsmasq; then
        tail -n 20 "$RUN/lan-dnsmasq.out" "$RUN/lan-dnsmasq.log" >&2 2>/dev/null || true
        die "lan-selftest: dnsmasq did not start in the router namespace"
    fi
}

# lh_try CMD...: run a lanhost step in a subshell ('die' there must not end the selftest)
lh_try() { ( "$@" ) >/dev/null || { printf '  FAIL  %s\n' "$*"; FAILS=$((FAILS + 1)); }; }
lh_get() { state_get "$(lh_dir "$1")/$2" "$3"; } # NAME FILE KEY
in_range4() { # IP: inside the lan-selftest DHCPv4 pool 192.168.2.100-199
    [[ $1 =~ ^192\.168\.2\.([0-9]+)$ ]] && ((BASH_REMATCH[1] >= 100 && BASH_REMATCH[1] <= 199))
}
in_range6() { [[ $1 =~ ^2001:db8:0:111::1:[0-9a-f]{1,4}$ ]]; } # IP: inside ::1:0-::1:ffff
has_word() { [[ " $1 " == *" $2 "* ]] || { printf '        %q has no %q\n' "$1" "$2"; return 1; }; }
all_configured() { # NAME:CLIENT...
    local nc
    for nc in "$@"; do lh_configured "${nc%%:*}" "${nc#*:}" || return 1; done
}
dnsmasq_log_has() { grep -qE -- "$1" "$RUN/lan-dnsmasq.log" 2>/dev/null; } # ERE
dig_short() { # NS SERVER NAME TYPE
    nsx "$1" dig +short +time=2 +tries=2 @"$2" "$3" "$4" 2>&1 | tr '\n' ' ' | sed 's/ $//'
}

# lan4_check: the common IPv4 checks of a DHCPv4 client's lease4 file and the kernel's view
lease4_checks() { # NAME CLIENT
    local n=$1 c=$2 f ip
    f=$c.lease4
    ip=$(lh_get "$n" "$f" ip)
    check "$n $c: lease4 state=bound ip=$ip (pool 192.168.2.100-199)" eq \
        "$(lh_get "$n" "$f" state)/$(in_range4 "$ip" && echo in-pool)" "bound/in-pool"
    check "$n $c: prefixlen 24, router 192.168.2.1, dns 192.168.2.1, domain $LAN_DOMAIN, lease 600, server 192.168.2.1" eq \
        "$(lh_get "$n" "$f" prefixlen) $(lh_get "$n" "$f" router) $(lh_get "$n" "$f" dns) $(lh_get "$n" "$f" domain) $(lh_get "$n" "$f" lease) $(lh_get "$n" "$f" server)" \
        "24 192.168.2.1 192.168.2.1 $LAN_DOMAIN 600 192.168.2.1"
    check "$n $c: kernel has $ip/24 on eth0" has "$(nsx "$n" ip -4 -o addr show dev eth0)" "inet ${ip//./\\.}/24 "
    check "$n $c: kernel default route via 192.168.2.1" has "$(nsx "$n" ip -4 route show default)" \
        '^default via 192\.168\.2\.1 dev eth0'
}

lan_evidence() { # SUBDIR: the hosts' files and 'lanhost show' of each, into lan-selftest/SUBDIR
    local d=$RUN/lan-selftest/$1 n
    mkdir -p "$d"
    for n in $(lh_names); do
        mkdir -p "$d/$n"
        find "$(lh_dir "$n")" -maxdepth 1 -type f -exec cp {} "$d/$n/" \; 2>/dev/null || true
        lh_show "$n" >"$d/$n.show" 2>&1 || true
    done
}

cmd_lan_selftest() {
    local queues=1 n out ip2 ip3 ip5 a
    selftest_prepare lan-selftest
    [[ -f $RUN/queues ]] && queues=$(cat "$RUN/queues")
    for n in $(lh_names); do lh_del "$n" >/dev/null; done
    local resolv0 host0 vardb0
    resolv0=$(sha256sum /etc/resolv.conf 2>&1 || true)
    host0=$(hostname)
    vardb0=$(ls -la /var/lib/dhcpcd /var/lib/dhcp 2>&1 || true)

    say "lan-selftest: router = kernel router + dnsmasq on lan0 (DHCPv4 192.168.2.100-199, RA" \
        "2001:db8:0:111::/64 M=1 A=1 from $LAN_ROUTER_LL, DHCPv6 ::1:0-::1:ffff, DNS proxy to $HGW_ADDR)"
    lan_router_start
    FAILS=0
    say "lan-selftest: lan2 dhcpcd (v4+v6), lan3 udhcpc, lan4 kernel SLAAC only," \
        "lan5 (--ipv6 off) dhclient4 + dhclient6 -S, lan6 dhclient6 -N"
    lh_try lh_add lan2
    lh_try lh_add lan3
    lh_try lh_add lan4
    lh_try lh_add lan5 --ipv6 off
    lh_try lh_add lan6
    lh_try lh_dhcp lan2 dhcpcd both
    lh_try lh_dhcp lan3 udhcpc
    lh_try lh_dhcp lan5 dhclient4
    lh_try lh_dhcp lan5 dhclient6 -S
    lh_try lh_dhcp lan6 dhclient6 -N
    wait_until 300 all_configured lan2:dhcpcd lan3:udhcpc lan5:dhclient4 lan5:dhclient6 lan6:dhclient6 || true
    wait_until 100 eval '[[ -n $(nsx lan4 ip -6 route show default) ]]' || true
    sleep 1   # let dhcpcd's DHCPv6 and the tentative addresses settle
    rm -rf "$RUN/lan-selftest"
    mkdir -p "$RUN/lan-selftest"
    lan_evidence bound

    say "lan-selftest: lan2 dhcpcd"
    lease4_checks lan2 dhcpcd
    ip2=$(lh_get lan2 dhcpcd.lease4 ip)
    check "lan2 dhcpcd: ra state=received router=$LAN_ROUTER_LL prefix 2001:db8:0:111::/64 flags MO" eq \
        "$(lh_get lan2 dhcpcd.ra state) $(lh_get lan2 dhcpcd.ra router) $(lh_get lan2 dhcpcd.ra prefix) $(lh_get lan2 dhcpcd.ra flags)" \
        "received $LAN_ROUTER_LL 2001:db8:0:111::/64 MO"
    check "lan2 dhcpcd: SLAAC address 2001:db8:0:111:0:ff:fe00:102 recorded (slaac=$(lh_get lan2 dhcpcd.ra slaac))" \
        has_word "$(lh_get lan2 dhcpcd.ra slaac)" 2001:db8:0:111:0:ff:fe00:102
    check "lan2 dhcpcd: kernel has 2001:db8:0:111:0:ff:fe00:102/64 with lifetimes" has \
        "$(nsx lan2 ip -6 -o addr show dev eth0)" 'inet6 2001:db8:0:111:0:ff:fe00:102/64 .*valid_lft [0-9]+sec preferred_lft [0-9]+sec'
    check "lan2 dhcpcd: RA RDNSS recorded (rdnss=$(lh_get lan2 dhcpcd.ra rdnss)), DNSSL $LAN_DOMAIN" eq \
        "$(lh_get lan2 dhcpcd.ra rdnss) $(lh_get lan2 dhcpcd.ra dnssl)" "$LAN_ROUTER_LL%eth0 $LAN_DOMAIN"
    a=$(lh_get lan2 dhcpcd.lease6 addr)
    check "lan2 dhcpcd: DHCPv6 IA_NA $a (::1:0-::1:ffff), dns 2001:db8:0:111::1, domain_search $LAN_DOMAIN" eq \
        "$(lh_get lan2 dhcpcd.lease6 state) $(in_range6 "$a" && echo in-pool) $(lh_get lan2 dhcpcd.lease6 dns) $(lh_get lan2 dhcpcd.lease6 domain_search)" \
        "bound in-pool 2001:db8:0:111::1 $LAN_DOMAIN"
    check "lan2 dhcpcd: IPv6 default route via $LAN_ROUTER_LL" has "$(nsx lan2 ip -6 route show default)" \
        "^default via $LAN_ROUTER_LL dev eth0"

    say "lan-selftest: lan3 udhcpc"
    lease4_checks lan3 udhcpc
    ip3=$(lh_get lan3 udhcpc.lease4 ip)
    check "lan3 udhcpc: a different address than lan2 ($ip3 != $ip2)" test "$ip3" != "$ip2"

    say "lan-selftest: lan4 kernel SLAAC only (accept_ra=1 autoconf=1, no client)"
    check "lan4: kernel SLAAC address 2001:db8:0:111:0:ff:fe00:104/64 (dynamic)" has \
        "$(nsx lan4 ip -6 -o addr show dev eth0)" 'inet6 2001:db8:0:111:0:ff:fe00:104/64 scope global dynamic'
    check "lan4: default route via $LAN_ROUTER_LL proto ra" has "$(nsx lan4 ip -6 route show default)" \
        "^default via $LAN_ROUTER_LL dev eth0 proto ra"
    check "lan4: no IPv4 address" eq "$(nsx lan4 ip -4 -o addr show dev eth0)" ""

    say "lan-selftest: lan5 dhclient4 + dhclient6 -S (IPv6 autoconf off)"
    lease4_checks lan5 dhclient4
    ip5=$(lh_get lan5 dhclient4.lease4 ip)
    check "lan5 dhclient4: a third address ($ip5 not $ip2/$ip3)" test "$ip5" != "$ip2" -a "$ip5" != "$ip3"
    check "lan5 dhclient6 -S: state=informed, dns 2001:db8:0:111::1, domain_search $LAN_DOMAIN, no address" eq \
        "$(lh_get lan5 dhclient6.lease6 state) $(lh_get lan5 dhclient6.lease6 dns) $(lh_get lan5 dhclient6.lease6 domain_search) addr=$(lh_get lan5 dhclient6.lease6 addr)" \
        "informed 2001:db8:0:111::1 $LAN_DOMAIN addr="
    check "lan5: no global IPv6 address (--ipv6 off)" eq "$(nsx lan5 ip -6 -o addr show dev eth0 scope global)" ""
    check "dnsmasq log: INFORMATION-REQUEST from DUID-LL of lan5" dnsmasq_log_has \
        'DHCPINFORMATION-REQUEST\(lan0\) 00:03:00:01:02:00:00:00:01:05'

    say "lan-selftest: lan6 dhclient6 -N"
    a=$(lh_get lan6 dhclient6.lease6 addr)
    check "lan6 dhclient6 -N: state=bound addr $a (::1:0-::1:ffff)/128, preferred 600, valid 600, dns 2001:db8:0:111::1" eq \
        "$(lh_get lan6 dhclient6.lease6 state) $(in_range6 "$a" && echo in-pool)/$(lh_get lan6 dhclient6.lease6 prefixlen) $(lh_get lan6 dhclient6.lease6 preferred) $(lh_get lan6 dhclient6.lease6 valid) $(lh_get lan6 dhclient6.lease6 dns)" \
        "bound in-pool/128 600 600 2001:db8:0:111::1"
    check "lan6 dhclient6 -N: kernel has $a/128 on eth0" has "$(nsx lan6 ip -6 -o addr show dev eth0)" "inet6 $a/128 "

    say "lan-selftest: DNS through the router (dnsmasq proxy -> hgw dnsmasq), dig from the hosts"
    out=$(dig_short lan2 192.168.2.1 www.lab.example A)
    check "lan2: dig @192.168.2.1 www.lab.example A -> $out" eq "$out" "$V4_SERVER"
    out=$(dig_short lan6 2001:db8:0:111::1 www.lab.example AAAA)
    check "lan6: dig @2001:db8:0:111::1 www.lab.example AAAA -> $out" eq "$out" "$V6_SERVER"
    out=$(nsx lan3 dig +time=2 +tries=2 @192.168.2.1 nothing.example.com A 2>&1 | grep -o 'status: [A-Z]*' || true)
    check "lan3: dig @192.168.2.1 nothing.example.com -> $out" eq "$out" "status: NXDOMAIN"

    say "lan-selftest: renew"
    local n2 n3
    n2=$(lh_events lan2)
    n3=$(lh_events lan3)
    lh_try lh_each renew lan2
    lh_try lh_each renew lan3
    wait_until 50 lh_event_since lan2 "$n2" ' dhcpcd RENEW dhcp$' || true
    wait_until 50 lh_event_since lan2 "$n2" ' dhcpcd RENEW6 dhcp6$' || true
    wait_until 50 lh_event_since lan3 "$n3" ' udhcpc renew$' || true
    check "lan2 dhcpcd -N: RENEW (v4) and RENEW6 events" eq \
        "$(lh_event_since lan2 "$n2" ' dhcpcd RENEW dhcp$' && echo v4) $(lh_event_since lan2 "$n2" ' dhcpcd RENEW6 dhcp6$' && echo v6)" "v4 v6"
    check "lan2: same address after the renew ($(lh_get lan2 dhcpcd.lease4 ip))" eq "$(lh_get lan2 dhcpcd.lease4 ip)" "$ip2"
    check "lan3 udhcpc SIGUSR1: renew event, same address" eq \
        "$(lh_event_since lan3 "$n3" ' udhcpc renew$' && echo renew) $(lh_get lan3 udhcpc.lease4 ip)" "renew $ip3"
    check "dnsmasq log: DHCPRENEW from lan2's DUID" dnsmasq_log_has 'DHCPRENEW\(lan0\) 00:03:00:01:02:00:00:00:01:02'

    say "lan-selftest: release"
    lh_try lh_each release lan2
    lh_try lh_each release lan3
    lh_try lh_each release lan6
    check "dnsmasq log: DHCPRELEASE $ip2 (lan2 dhcpcd)" dnsmasq_log_has "DHCPRELEASE\\(lan0\\) ${ip2//./\\.} 02:00:00:00:01:02"
    check "dnsmasq log: DHCPRELEASE $ip3 (lan3 udhcpc)" dnsmasq_log_has "DHCPRELEASE\\(lan0\\) ${ip3//./\\.} 02:00:00:00:01:03"
    check "dnsmasq log: DHCPv6 RELEASE from lan2 and lan6" eq \
        "$(dnsmasq_log_has 'DHCPRELEASE\(lan0\) 00:03:00:01:02:00:00:00:01:02' && echo lan2) $(dnsmasq_log_has 'DHCPRELEASE\(lan0\) 00:03:00:01:02:00:00:00:01:06' && echo lan6)" "lan2 lan6"
    check "released: lease files say so (lan2 v4/v6, lan3, lan6)" eq \
        "$(lh_get lan2 dhcpcd.lease4 state) $(lh_get lan2 dhcpcd.lease6 state) $(lh_get lan3 udhcpc.lease4 state) $(lh_get lan6 dhclient6.lease6 state)" \
        "released released released released"
    check "released: no IPv4 on lan2/lan3, no DHCPv6 address on lan6" eq \
        "$(nsx lan2 ip -4 -o addr show dev eth0)$(nsx lan3 ip -4 -o addr show dev eth0)$(nsx lan6 ip -6 -o addr show dev eth0 | grep -c '/128 ' || true)" "0"
    check "released: the clients stopped (lan2, lan3, lan6)" eq \
        "$(lh_clients_running lan2)$(lh_clients_running lan3)$(lh_clients_running lan6)" ""

    say "lan-selftest: the machine's files are untouched"
    check "/etc/resolv.conf unchanged" eq "$(sha256sum /etc/resolv.conf 2>&1 || true)" "$resolv0"
    check "hostname unchanged ($host0)" eq "$(hostname)" "$host0"
    check "/var/lib/dhcpcd and /var/lib/dhcp unchanged" eq "$(ls -la /var/lib/dhcpcd /var/lib/dhcp 2>&1 || true)" "$vardb0"

    # evidence, then delete the hosts and rebuild a pristine lab (router without addresses)
    lan_evidence end
    cp "$RUN"/lan-dnsmasq.* "$RUN/lan-selftest/" 2>/dev/null || true
    local before
    before=$(for n in lan2 lan3 lan4 lan5 lan6; do ip netns pids "$n" 2>/dev/null; done | tr '\n' ' ')
    for n in lan2 lan3 lan4 lan5 lan6; do lh_try lh_del "$n"; done
    local left=
    for n in $before; do proc_running "$n" && left+=" $n($(tr '\0' ' ' <"/proc/$n/cmdline" 2>/dev/null))"; done
    check "lanhost del: no client process left (had: ${before:-none})" eq "$left" ""
    stop_pidfile lan-dnsmasq
    say "lan-selftest: evidence saved in $RUN/lan-selftest/; rebuilding the lab"
    cmd_up --queues "$queues" >/dev/null
    check "router namespace: no addresses, no processes again" eq \
        "$(nsx router ip -o addr show | grep -v ' lo ' || true)$(ip netns pids router)" ""
    if ((FAILS)); then
        trap - ERR
        warn "lan-selftest: $FAILS check(s) FAILED (evidence in $RUN/lan-selftest/)"
        exit 1
    fi
    say "lan-selftest: ALL PASSED (lab rebuilt, router namespace has no addresses again)"
}

# --------------------------------------------------------------- aftr
# aftr_start [aftr.py options]: start the AFTR emulator (softwire MTU 1500:
# see cmd_up) in the aftr namespace; returns at once.
aftr_start() {
    start_bg aftr aftr aftr.py python3 -u "$LAB_SRC/aftr.py" --aftr "$AFTR_ADDR" --tun tun0 \
        --mtu 1500 --route 192.168.0.0/16 --stats "$RUN/aftr-stats.json" --log "$RUN/aftr.log" "$@"
}

cmd_aftr() {
    local sub=${1:-} i
    (($#)) && shift
    case $sub in
        restart)
            need_lab
            stop_pidfile aftr
            rm -f "$RUN/aftr-stats.json"
            aftr_start "$@"
            # Up once it wrote its stats and its tun0 (with its routes) exists.
            for i in $(seq 100); do
                [[ -s $RUN/aftr-stats.json ]] && nsx aftr ip link show tun0 >/dev/null 2>&1 && return 0
                sleep 0.1
            done
            tail -n 20 "$RUN/aftr.out" >&2 || true
            die "aftr.py did not come back" ;;
        *) die "usage: lab.sh aftr restart [--encap-limit N]" ;;
    esac
}

# --------------------------------------------------------------- br (MAP-E)
# The MAP-E Border Relay emulator runs in the aftr namespace beside aftr.py
# (its own raw socket bound to $BR_ADDR, its own tun brtun, no NAT). Routes:
# hgw -> $BR_ADDR via the aftr namespace; hgw -> the rule IPv6 prefix via the
# router's WAN link-local (where the CEs live); inet -> the rule IPv4 prefix
# via the aftr namespace (br.py routes it into brtun). 'stop' removes the
# rule routes again (recorded in br.routes).
br_routes_del() {
    local rule6 rule4
    [[ -f $RUN/br.routes ]] || return 0
    read -r rule6 rule4 <"$RUN/br.routes"
    nsx hgw ip -6 route del "$rule6" via "$ROUTER_WAN_LL" dev down0 2>/dev/null || true
    nsx inet ip -4 route del "$rule4" via 203.0.113.1 dev v4 2>/dev/null || true
    rm -f "$RUN/br.routes"
}

br_stop() {
    stop_pidfile br
    br_routes_del
}

br_start() { # [br.py options]
    local prefixes rule6 rule4 a i
    for a in "$@"; do
        case $a in --br | --br=* | --tun | --tun=* | --stats* | --log*) die "br: $a is fixed by lab.sh" ;; esac
    done
    prefixes=$(python3 "$LAB_SRC/br.py" "$@" --print-prefixes) || die "br: bad br.py options: $*"
    read -r rule6 rule4 <<<"$prefixes"
    nsx aftr ip -6 addr replace "$BR_ADDR"/128 dev lo
    nsx hgw ip -6 route replace "${BR_ADDR%::*}::/64" via 2001:db8:1::2 dev core0
    nsx hgw ip -6 route replace "$rule6" via "$ROUTER_WAN_LL" dev down0
    nsx inet ip -4 route replace "$rule4" via 203.0.113.1 dev v4
    printf '%s %s\n' "$rule6" "$rule4" >"$RUN/br.routes"
    rm -f "$RUN/br-stats.json"
    start_bg br aftr br.py python3 -u "$LAB_SRC/br.py" --br "$BR_ADDR" --tun brtun \
        --stats "$RUN/br-stats.json" --log "$RUN/br.log" "$@"
    # Up once it wrote its stats and its tun (with the rule route) exists.
    for i in $(seq 100); do
        if [[ -s $RUN/br-stats.json ]] && nsx aftr ip -4 route show "$rule4" dev brtun | grep -q .; then
            say "br: $BR_ADDR (br.py pid $(cut -d' ' -f1 "$PIDS/br.pid")), rule $rule6 $rule4;" \
                "stats $RUN/br-stats.json, log $RUN/br.log"
            return 0
        fi
        proc_running "$(cut -d' ' -f1 "$PIDS/br.pid")" || break   # exited (not yet exec'd is fine)
        sleep 0.1
    done
    tail -n 20 "$RUN/br.out" >&2 || true
    br_stop
    die "br.py did not start"
}

br_status() {
    if pid_alive br; then echo "br: running (pid $(cut -d' ' -f1 "$PIDS/br.pid"))"; else echo "br: not running"; fi
    [[ -f $RUN/br-stats.json ]] || return 0
    python3 - "$RUN/br-stats.json" <<'EOF'
import json, sys, time
d = json.load(open(sys.argv[1]))
r = d["rule"]
print(f"   rule {r['ipv6_prefix']} {r['ipv4_prefix']} ea {r['ea_length']} offset {r['psid_offset']} "
      f"psid length {r['psid_length']} ({r['ports_per_ce']} ports per CE), iid {r['iid_format']}")
print(f"   decap_ok={d['decap_ok']} encap_ok={d['encap_ok']} flows={d['flows']} ces={d['ce_count']} "
      f"violations_total={d['violations_total']} errors_total={d['errors_total']} "
      f"age={time.time() - d['updated']:.1f}s")
for name in ("violations", "errors"):
    print(f"   {name}: {({k: v for k, v in d[name].items() if v}) or 'none'}")
for ce, c in list(d["ces"].items())[-10:]:
    print(f"   ce {ce} {c['ipv4']} psid {c['psid']} ports used {c['ports_used']}")
EOF
}

cmd_br() {
    local sub=${1:-}
    (($#)) && shift
    case $sub in
        start | restart) need_lab; br_stop; br_start "$@" ;;
        stop) br_stop; say "br: stopped" ;;
        status) br_status ;;
        explain) (($#)) || die "usage: lab.sh br explain [--rule R] [--iid I] IPV6[/LEN]|IPV4:PORT"
            python3 "$LAB_SRC/br.py" "${@:1:$#-1}" --explain "${@: -1}" ;;
        *) die "usage: lab.sh br start [--rule v6plus-lab|ocn-lab|RULE6,RULE4,EA,OFFSET] [--iid legacy|rfc7597] [br.py options] | stop | status | explain [--rule R] [--iid I] IPV6[/LEN]|IPV4:PORT" ;;
    esac
}

# --------------------------------------------------------------- fixed IPv4 (IPIP) and HB46PP
# The provider side of issue 20, none of it started by 'up':
#  - ipip.py, the fixed-IPv4 tunnel end, beside aftr.py in the aftr namespace
#    ($IPIP_ADDR on lo, tun ipiptun with the route $IPIP_IPV4/32, no NAT); hgw
#    routes ${IPIP_ADDR%::*}::/64 to it, inet routes $IPIP_IPV4/32 to the aftr
#    namespace. The customer's registered address: ipip-registration.json.
#  - update_server.py and hb46pp_server.py in the aftr namespace too (the
#    provider's side), on lo addresses of $PROV_NET, which hgw routes there.

# tls_make: the lab CA and server certificates in $RUN/tls (openssl, EC P-256):
# ca.pem/ca.key (the CA), server.pem/server.key (DNS:$HB46PP_NAME, IP:$HB46PP_ADDR,
# signed by the CA), wrong-name.pem/wrong-name.key (DNS:wrong.lab.example, signed by
# the CA: for hostname checks). Made fresh by every 'up'; never in the tree.
tls_make() {
    local d=$RUN/tls name
    rm -rf "$d"
    mkdir -p "$d"
    chmod 700 "$d"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
        -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/O=ipoe lab/CN=ipoe lab CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>"$d/openssl.err" || { cat "$d/openssl.err" >&2; die "tls: CA"; }
    for name in server wrong-name; do
        local san="DNS:$HB46PP_NAME,IP:$HB46PP_ADDR" cn=$HB46PP_NAME
        [[ $name == server ]] || { san="DNS:wrong.lab.example"; cn=wrong.lab.example; }
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
            -keyout "$d/$name.key" -out "$d/$name.csr" -subj "/O=ipoe lab/CN=$cn" 2>>"$d/openssl.err" ||
            { cat "$d/openssl.err" >&2; die "tls: $name key"; }
        printf '%s\n' "subjectAltName=$san" "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
            "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" >"$d/$name.ext"
        openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
            -days 825 -sha256 -extfile "$d/$name.ext" -out "$d/$name.pem" 2>>"$d/openssl.err" ||
            { cat "$d/openssl.err" >&2; die "tls: $name certificate"; }
        rm -f "$d/$name.csr"
    done
    chmod 600 "$d"/*.key
}

# provider_net: the provider's server addresses on aftr's lo, routed by hgw (idempotent).
# Not in inet: its http.server listens on [::]:80 already.
provider_net() {
    nsx aftr ip -6 addr replace "$UPDATE_ADDR"/128 dev lo
    nsx aftr ip -6 addr replace "$HB46PP_ADDR"/128 dev lo
    nsx hgw ip -6 route replace "$PROV_NET" via 2001:db8:1::2 dev core0
}

# stats_print FILE PYEXPR...: print each expression over d = the JSON of FILE
stats_print() {
    local f=$1; shift
    [[ -f $f ]] || { echo "   (no $f)"; return 0; }
    python3 - "$f" "$@" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for e in sys.argv[2:]:
    print("   " + str(eval(e, {"d": d, "nz": lambda t: {k: v for k, v in t.items() if v} or "none"})))
EOF
}

# ---- ipip.py
ipip_stop() {
    stop_pidfile ipip
    nsx inet ip -4 route del "$IPIP_IPV4"/32 via 203.0.113.1 dev v4 2>/dev/null || true
    rm -f "$RUN/ipip.ctl"
}

ipip_start() { # [ipip.py options]
    local a i
    for a in "$@"; do
        case $a in --addr* | --ipv4* | --tun* | --stats* | --log* | --control* | --registration* | --register*)
            die "ipip: $a is fixed by lab.sh" ;; esac
    done
    nsx aftr ip -6 addr replace "$IPIP_ADDR"/128 dev lo
    nsx hgw ip -6 route replace "${IPIP_ADDR%::*}::/64" via 2001:db8:1::2 dev core0
    nsx inet ip -4 route replace "$IPIP_IPV4"/32 via 203.0.113.1 dev v4
    rm -f "$RUN/ipip-stats.json" "$RUN/ipip.ctl"
    start_bg ipip aftr ipip.py python3 -u "$LAB_SRC/ipip.py" --addr "$IPIP_ADDR" --ipv4 "$IPIP_IPV4" \
        --tun ipiptun --registration "$RUN/ipip-registration.json" --control "$RUN/ipip.ctl" \
        --stats "$RUN/ipip-stats.json" --log "$RUN/ipip.log" "$@"
    for i in $(seq 100); do
        if [[ -s $RUN/ipip-stats.json && -S $RUN/ipip.ctl ]] &&
            nsx aftr ip -4 route show "$IPIP_IPV4"/32 dev ipiptun | grep -q .; then
            say "ipip: $IPIP_ADDR, fixed $IPIP_IPV4 (ipip.py pid $(cut -d' ' -f1 "$PIDS/ipip.pid")), registered" \
                "$(ipip_registered); stats $RUN/ipip-stats.json, log $RUN/ipip.log"
            return 0
        fi
        proc_running "$(cut -d' ' -f1 "$PIDS/ipip.pid")" || break
        sleep 0.1
    done
    tail -n 20 "$RUN/ipip.out" >&2 || true
    ipip_stop
    die "ipip.py did not start"
}

ipip_registered() {
    python3 -c 'import json,sys
try: print(json.load(open(sys.argv[1])).get("local"))
except OSError: print(None)' "$RUN/ipip-registration.json"
}

ipip_status() {
    if pid_alive ipip; then echo "ipip: running (pid $(cut -d' ' -f1 "$PIDS/ipip.pid"))"; else echo "ipip: not running"; fi
    stats_print "$RUN/ipip-stats.json" \
        '"%s fixed %s, registered local %s (changes %s)" % (d["addr"], d["ipv4"], d["registered_local"], d["registration_changes"])' \
        '"decap_ok=%s encap_ok=%s violations_total=%s errors_total=%s ports_used=%s" % (d["decap_ok"], d["encap_ok"], d["violations_total"], d["errors_total"], d["ports_used"])' \
        '"violations: %s" % nz(d["violations"])' '"errors: %s" % nz(d["errors"])' \
        '"wrong sources: %s" % (d["wrong_sources"] or "none")'
}

cmd_ipip() {
    local sub=${1:-}
    (($#)) && shift
    case $sub in
        start | restart) need_lab; ipip_stop; ipip_start "$@" ;;
        stop) ipip_stop; say "ipip: stopped" ;;
        status) ipip_status ;;
        stats) pid_alive ipip && kill -USR1 "$(cut -d' ' -f1 "$PIDS/ipip.pid")" && sleep 0.3
            cat "$RUN/ipip-stats.json" ;;
        register) [[ $# -eq 1 ]] || die "usage: lab.sh ipip register ADDR|none"
            python3 "$LAB_SRC/ipip.py" --registration "$RUN/ipip-registration.json" \
                --control "$RUN/ipip.ctl" --register "$1" ;;
        *) die "usage: lab.sh ipip start [ipip.py options] | stop | status | stats | register ADDR|none" ;;
    esac
}

# ---- update_server.py
update_start() { # [update_server.py options]
    local a i
    for a in "$@"; do
        case $a in --listen* | --port* | --stats* | --records* | --log* | --control* | --registration*)
            die "update: $a is fixed by lab.sh" ;; esac
    done
    provider_net
    rm -f "$RUN/update-stats.json"
    start_bg update aftr update_server.py python3 -u "$LAB_SRC/update_server.py" --listen "$UPDATE_ADDR" \
        --port "$UPDATE_PORT" --registration "$RUN/ipip-registration.json" --control "$RUN/ipip.ctl" \
        --stats "$RUN/update-stats.json" --records "$RUN/update-records.jsonl" --log "$RUN/update.log" "$@"
    for i in $(seq 100); do
        if [[ -s $RUN/update-stats.json && -n $(nsx aftr ss -Hltn "sport = :$UPDATE_PORT") ]]; then
            say "update: http://[$UPDATE_ADDR]:$UPDATE_PORT/ (update_server.py pid $(cut -d' ' -f1 "$PIDS/update.pid"));" \
                "stats $RUN/update-stats.json, records $RUN/update-records.jsonl"
            return 0
        fi
        proc_running "$(cut -d' ' -f1 "$PIDS/update.pid")" || break
        sleep 0.1
    done
    tail -n 20 "$RUN/update.out" >&2 || true
    stop_pidfile update
    die "update_server.py did not start"
}

cmd_update() {
    local sub=${1:-}
    (($#)) && shift
    case $sub in
        start | restart) need_lab; stop_pidfile update; update_start "$@" ;;
        stop) stop_pidfile update; say "update: stopped" ;;
        status)
            if pid_alive update; then echo "update: running (pid $(cut -d' ' -f1 "$PIDS/update.pid"))"; else echo "update: not running"; fi
            stats_print "$RUN/update-stats.json" \
                '"style %s%s, user %s: %s requests, %s, registered %s" % (d["style"], " (basic)" if d["basic"] else "", d["user"], d["requests"], nz(d["results"]), d["registered"])' ;;
        stats) cat "$RUN/update-stats.json" ;;
        *) die "usage: lab.sh update start [--style v6plus|transix] [--user U] [--pass P] [--basic] [--fail-first N] [--fail-status S] [--delay S] [--chunked] | stop | status | stats" ;;
    esac
}

# ---- hb46pp_server.py
HB46PP_USAGE="usage: lab.sh hb46pp start --answer FILE [--tls] [--cert server|wrong-name] [--dns] [hb46pp_server.py options]
       lab.sh hb46pp stop | status | stats | answer FILE
       lab.sh hb46pp fault status CODE|redirect [URL]|malformed KIND|close|delay S [--count N] | fault none"

hb46pp_stop() {
    stop_pidfile hb46pp
    if [[ -f $RUN/hb46pp.dns ]]; then   # the records 'start --dns' added
        rm -f "$RUN/hb46pp.dns"
        dns_record del txt 4over6.info >/dev/null
        dns_record del host "$HB46PP_NAME" >/dev/null
    fi
}

hb46pp_start() {
    local answer= tls=0 dns=0 cert=server opts=() i url
    while (($#)); do
        case $1 in
            --answer) answer=${2:-}; shift 2 || die "--answer needs a file" ;;
            --tls) tls=1; shift ;;
            --cert) cert=${2:-}; shift 2 || die "--cert needs server|wrong-name" ;;
            --dns) dns=1; shift ;;
            --listen* | --http-port* | --https-port* | --key* | --stats* | --records* | --log* | --fault-file*)
                die "hb46pp: $1 is fixed by lab.sh" ;;
            *) opts+=("$1"); shift ;;
        esac
    done
    [[ -n $answer && -f $answer ]] || die "hb46pp start: --answer FILE is needed (e.g. $LAB_SRC/hb46pp/dslite.json)"
    [[ $cert == server || $cert == wrong-name ]] || die "hb46pp: --cert server|wrong-name"
    [[ -f $RUN/tls/ca.pem ]] || tls_make
    provider_net
    cp "$answer" "$RUN/hb46pp-answer.json.tmp" && mv "$RUN/hb46pp-answer.json.tmp" "$RUN/hb46pp-answer.json"
    rm -f "$RUN/hb46pp-stats.json" "$RUN/hb46pp-fault.json"
    local tlsopts=()
    ((tls)) && tlsopts=(--tls --cert "$RUN/tls/$cert.pem" --key "$RUN/tls/$cert.key")
    start_bg hb46pp aftr hb46pp_server.py python3 -u "$LAB_SRC/hb46pp_server.py" --listen "$HB46PP_ADDR" \
        --http-port 80 --https-port 443 --answer "$RUN/hb46pp-answer.json" --fault-file "$RUN/hb46pp-fault.json" \
        --stats "$RUN/hb46pp-stats.json" --records "$RUN/hb46pp-records.jsonl" --log "$RUN/hb46pp.log" \
        "${tlsopts[@]}" "${opts[@]}"
    for i in $(seq 100); do
        if [[ -s $RUN/hb46pp-stats.json && -n $(nsx aftr ss -Hltn "sport = :80") ]] &&
            { ((!tls)) || [[ -n $(nsx aftr ss -Hltn "sport = :443") ]]; }; then
            if ((dns)); then
                if ((tls)); then url="url=https://$HB46PP_NAME/config t=b"; else url="url=http://$HB46PP_NAME/config t=a"; fi
                dns_record add host "$HB46PP_NAME" "$HB46PP_ADDR" >/dev/null
                dns_record add txt 4over6.info "v=v6mig-1 $url" >/dev/null
                touch "$RUN/hb46pp.dns"
            fi
            say "hb46pp: http://[$HB46PP_ADDR]/config$( ((tls)) && echo " and https://$HB46PP_NAME/config (CA $RUN/tls/ca.pem)")" \
                "(pid $(cut -d' ' -f1 "$PIDS/hb46pp.pid")), answer $answer$( ((dns)) && echo ", TXT 4over6.info and $HB46PP_NAME in the lab DNS");" \
                "stats $RUN/hb46pp-stats.json"
            return 0
        fi
        proc_running "$(cut -d' ' -f1 "$PIDS/hb46pp.pid")" || break
        sleep 0.1
    done
    tail -n 20 "$RUN/hb46pp.out" >&2 || true
    stop_pidfile hb46pp
    die "hb46pp_server.py did not start"
}

# hb46pp_fault KIND [ARG] [--count N]: what the next requests get (see hb46pp_server.py)
hb46pp_fault() {
    local kind=${1:-} arg= count=-1
    (($#)) && shift
    case $kind in
        none) ;;
        status | malformed | delay) arg=${1:-}; [[ -n $arg ]] || die "$HB46PP_USAGE"; shift ;;
        redirect) if [[ ${1:-} == http* ]]; then arg=$1; shift; fi ;;
        close) ;;
        *) die "$HB46PP_USAGE" ;;
    esac
    if [[ ${1:-} == --count ]]; then count=${2:-}; need_uint --count "$count"; shift 2; fi
    (($# == 0)) || die "$HB46PP_USAGE"
    python3 -c 'import json,os,sys
k, a, c, f = sys.argv[1:5]
json.dump({"kind": k, "arg": a or None, "count": int(c)}, open(f + ".tmp", "w"))
os.replace(f + ".tmp", f)' "$kind" "$arg" "$count" "$RUN/hb46pp-fault.json"
    say "hb46pp: fault $kind${arg:+ $arg} (count $count)"
}

cmd_hb46pp() {
    local sub=${1:-}
    (($#)) && shift
    case $sub in
        start | restart) need_lab; hb46pp_stop; hb46pp_start "$@" ;;
        stop) hb46pp_stop; say "hb46pp: stopped" ;;
        status)
            if pid_alive hb46pp; then echo "hb46pp: running (pid $(cut -d' ' -f1 "$PIDS/hb46pp.pid"))"; else echo "hb46pp: not running"; fi
            stats_print "$RUN/hb46pp-stats.json" \
                '"%s requests %s, violations %s, fault %s, tls failures %s" % (d["requests"], d["by_status"], nz(d["violations"]), d["fault"], d["tls_failure_count"])' ;;
        stats) cat "$RUN/hb46pp-stats.json" ;;
        answer) [[ -f ${1:-} ]] || die "$HB46PP_USAGE"
            cp "$1" "$RUN/hb46pp-answer.json.tmp" && mv "$RUN/hb46pp-answer.json.tmp" "$RUN/hb46pp-answer.json"
            say "hb46pp: answer $1" ;;
        fault) hb46pp_fault "$@" ;;
        *) die "$HB46PP_USAGE" ;;
    esac
}

# --------------------------------------------------------------- main
usage() {
    sed -n '2,43p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
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
        radvd) cmd_radvd "$@" ;;
        dhcp6) cmd_dhcp6 "$@" ;;
        dns) cmd_dns "$@" ;;
        aftr) cmd_aftr "$@" ;;
        br) cmd_br "$@" ;;
        ipip) cmd_ipip "$@" ;;
        update) cmd_update "$@" ;;
        hb46pp) cmd_hb46pp "$@" ;;
        lanhost) cmd_lanhost "$@" ;;
        lan-selftest) check_prereqs; cmd_lan_selftest ;;
        peers-selftest) check_prereqs; cmd_peers_selftest ;;
        selftest) check_prereqs; cmd_selftest ;;
        -h | --help | help) usage 0 ;;
        *) usage 1 >&2 ;;
    esac
}

main "$@"
