#!/usr/bin/env bash
# Captures what real LAN hosts send the router's LAN services, for
# seeds.py: the kernel's Router Solicitations, rdisc6's, and ISC dhclient's
# DHCPv6 exchanges (Solicit/Request, Confirm, Release, Information-Request,
# IA_TA and IA_PD Solicits) with dnsmasq as the server.
#
#   bash fuzz/capture-lan-clients.sh [out.pcap]   (root; default
#   /run/ipoe-lab/fuzz-lan-clients.pcap, where seeds.py looks)
#
# Two private network namespaces joined by one veth pair, nothing else: no
# traffic leaves them. The host side has the lab's host MAC, so seeds.py
# tells the frames apart as a LAN capture (received by the router's MAC
# or multicast).
set -euo pipefail
OUT=${1:-/run/ipoe-lab/fuzz-lan-clients.pcap}
H=fuzzt-cap-host
S=fuzzt-cap-srv
TMP=$(mktemp -d)
cleanup() {
    [ -f "$TMP/tcpdump.pid" ] && kill "$(cat "$TMP/tcpdump.pid")" 2>/dev/null || true
    [ -f "$TMP/dnsmasq.pid" ] && kill "$(cat "$TMP/dnsmasq.pid")" 2>/dev/null || true
    ip netns del "$H" 2>/dev/null || true
    ip netns del "$S" 2>/dev/null || true
    [ -n "${KEEP:-}" ] && cp -r "$TMP" /tmp/fuzzt-cap-debug
    rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$H"
ip netns add "$S"
ip -n "$H" link add v0 address 02:00:00:00:01:10 type veth peer name v1 netns "$S" address 02:00:00:00:02:01
ip -n "$S" addr add 2001:db8:0:111::1/64 dev v1 nodad
ip -n "$S" link set v1 up
ip -n "$S" link set lo up
ip -n "$H" link set lo up
# Up before tcpdump starts (it refuses a down device), with DAD off so
# the kernel's first RS goes out after tcpdump is listening.
ip netns exec "$H" sysctl -qw net.ipv6.conf.v0.dad_transmits=0
ip netns exec "$H" sysctl -qw net.ipv6.conf.v0.router_solicitation_delay=2
ip -n "$H" link set v0 up
ip netns exec "$H" tcpdump -Z root -i v0 -w "$OUT" -U 'ip6' >"$TMP/tcpdump.log" 2>&1 &
echo $! >"$TMP/tcpdump.pid"
sleep 1
ip netns exec "$S" dnsmasq --conf-file=/dev/null --keep-in-foreground --port=0 --interface=v1 --bind-interfaces \
    --dhcp-range=::100,::1ff,constructor:v1,64,1h --dhcp-option=option6:dns-server,[2001:db8:0:111::1] \
    --dhcp-option=option6:domain-search,lab.example --dhcp-leasefile="$TMP/leases" \
    --dhcp-rapid-commit --pid-file="$TMP/dnsmasq.pid" --log-facility="$TMP/dnsmasq.log" &
# DAD of the link-local addresses, and the kernel's RSs.
sleep 4
dh() {
    timeout 8 ip netns exec "$H" dhclient -6 -1 -v -lf "$TMP/dh6.leases" -pf "$TMP/dh6.pid" \
        -sf /bin/true "$@" v0 >>"$TMP/dhclient.log" 2>&1 || true
    [ -f "$TMP/dh6.pid" ] && kill "$(cat "$TMP/dh6.pid")" 2>/dev/null || true
    rm -f "$TMP/dh6.pid"
    sleep 1
}
ip netns exec "$H" rdisc6 -1 -w 500 v0 >/dev/null 2>&1 || true
dh                  # Solicit, Request
dh                  # with a lease: Confirm, or Solicit again
dh -r               # Release
dh -S               # Information-Request
dh -T               # IA_TA
dh -P               # IA_PD
rm -f "$TMP/dh6.leases"
dh -N -P            # IA_NA and IA_PD together
sleep 1
echo "capture-lan-clients.sh: $(tcpdump -nr "$OUT" 2>/dev/null | wc -l) frames in $OUT" >&2
