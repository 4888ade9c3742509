#!/usr/bin/env bash
# `make lab`: the newcomer's demo. Builds the namespace lab, runs ipoed as the
# router between a LAN host and an emulated NTT home gateway + DS-Lite AFTR,
# drives IPv4 (through the tunnel) and IPv6 traffic, shows what the router
# saw, and tears everything down.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=tests/lab/lab.sh
export IPOE_LAB_DIR=${IPOE_LAB_DIR:-/run/ipoe-lab}
SOCK=$IPOE_LAB_DIR/ipoed.sock
IPOED=target/release/ipoed
IPOECTL="target/release/ipoectl --socket $SOCK"

cleanup() {
  [ -n "${IPOED_PID:-}" ] && kill "$IPOED_PID" 2>/dev/null && wait "$IPOED_PID" 2>/dev/null
  bash "$LAB" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Building the lab: lan1 - router - hgw (radvd, Kea, dnsmasq) - aftr - inet"
bash "$LAB" up

step "Starting ipoed with no addresses in its config (config/examples/lab-auto.yaml)"
sed -e "s|/run/ipoed-lab/ipoed.sock|$SOCK|" -e "s|/run/ipoed-lab/state|$IPOE_LAB_DIR/state|" \
  config/examples/lab-auto.yaml > "$IPOE_LAB_DIR/ipoed.yaml"
rm -rf "$IPOE_LAB_DIR/state"
ip netns exec router "$IPOED" --config "$IPOE_LAB_DIR/ipoed.yaml" > "$IPOE_LAB_DIR/ipoed.log" 2>&1 &
IPOED_PID=$!
for _ in $(seq 50); do $IPOECTL version >/dev/null 2>&1 && break; sleep 0.1; done
$IPOECTL version
echo "waiting for SLAAC, DHCPv6-PD and the AFTR name to resolve..."
for _ in $(seq 100); do
  $IPOECTL --json show tunnel 2>/dev/null | grep -q '"up": true' && break; sleep 0.2
done
grep -E "wan:|lan:|dslite:|dhcpv6-pd:" "$IPOE_LAB_DIR/ipoed.log" | sed 's/^/  /'
step "ipoectl show wan / show pd / show tunnel: what ipoed learned"
$IPOECTL show wan
echo
$IPOECTL show pd
echo
$IPOECTL show tunnel

step "A new LAN host running dhcpcd configures itself from ipoed (DHCPv4, RA, DHCPv6, DNS)"
bash "$LAB" lanhost add lan2 >/dev/null
bash "$LAB" lanhost dhcp lan2 dhcpcd --wait 20 || true
sleep 2
sed 's/^/  /' "$IPOE_LAB_DIR/lanhosts/lan2/dhcpcd.lease4" | grep -E "ip=|router=|dns=|domain=|lease="
sed 's/^/  /' "$IPOE_LAB_DIR/lanhosts/lan2/dhcpcd.ra" 2>/dev/null | grep -E "prefix=|slaac=|rdnss=|dnssl=" || true
echo "lan2\$ dig +short @192.168.2.1 www.lab.example (through the router's DNS proxy)"
ip netns exec lan2 dig +short +time=3 +tries=1 @192.168.2.1 www.lab.example A || true
$IPOECTL show leases

run() { echo "lan1\$ $*"; ip netns exec lan1 "$@"; }
step "IPv4 from the LAN host, through the DS-Lite tunnel to the AFTR and NAT44"
run curl -sS --max-time 5 http://198.51.100.10/hello.txt
echo "(the server logged: $(grep hello.txt "$IPOE_LAB_DIR/http-access.log" | tail -1 | cut -d' ' -f1) as the client: the AFTR's NAT address)"
step "IPv6 from the LAN host, forwarded natively"
run curl -sS --max-time 5 -g 'http://[2001:db8:ffff::10]/hello.txt'
step "1 MiB each way round: IPv4 via DS-Lite and IPv6"
run sh -c 'curl -sS --max-time 20 http://198.51.100.10/blob.bin | sha256sum'
run sh -c "curl -sS --max-time 20 -g 'http://[2001:db8:ffff::10]/blob.bin' | sha256sum"
step "The router answers ping, and sends time exceeded for TTL 1"
run ping -c 2 -i 0.3 192.168.2.1
run ping -c 2 -i 0.3 2001:db8:0:111::1
run ping -c 1 -t 1 -W 2 198.51.100.10 || true

step "ipoectl show interfaces"
$IPOECTL show interfaces
step "ipoectl show runtime"
$IPOECTL show runtime
step "ipoectl show errors"
$IPOECTL show errors
step "ipoectl show neighbors"
$IPOECTL show neighbors

step "Stopping ipoed (SIGTERM) and tearing the lab down"
kill "$IPOED_PID"; wait "$IPOED_PID" && echo "ipoed exited 0"
IPOED_PID=
if ip netns exec router ip -d link show | grep -q prog/xdp; then echo "XDP program left attached!"; exit 1; fi
echo "no XDP program left on the router's interfaces"
