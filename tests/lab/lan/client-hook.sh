#!/bin/sh
# client-hook.sh CLIENT DIR [EVENT] - the event script of the lab's LAN-host DHCP
# clients (lab.sh lanhost dhcp). Each client calls a wrapper DIR/CLIENT.hook that
# execs this script; DIR is /run/ipoe-lab/lanhosts/NAME.
#
#   dhcpcd     script run with $reason (dhcpcd configures the interface itself)
#   udhcpc     script run with $1 = deconfig|bound|renew|leasefail|nak
#   dhclient4  dhclient-script replacement: $reason, applies the IPv4 lease
#   dhclient6  dhclient-script replacement: $reason, applies the IA_NA address
#
# It never touches /etc/resolv.conf, the hostname or anything outside DIR: it
# records what the client got (README.md "LAN hosts" describes the files):
#   DIR/events.log        one line per call: EPOCH CLIENT REASON [PROTOCOL]
#   DIR/CLIENT.env        the client's environment at its last call (sorted)
#   DIR/CLIENT.envlog     every call: "## EPOCH REASON" then the environment
#   DIR/CLIENT.lease4     normalised IPv4 lease        (dhcpcd, udhcpc, dhclient4)
#   DIR/CLIENT.lease6     normalised DHCPv6 result     (dhcpcd, dhclient6)
#   DIR/CLIENT.ra         normalised RA/SLAAC result   (dhcpcd)
set -u
client=$1 dir=$2
shift 2
case $client in
    udhcpc) reason=${1:-} ;;
    *) reason=${reason:-} ;;
esac
ifc=${interface:-eth0}
now=$(date +%s)
proto=${protocol:-}

# ---------------------------------------------------------------- recording
envdump() { env | LC_ALL=C sort | grep -Ev '^(PATH|PWD|SHLVL|_|OLDPWD)='; }
envdump >"$dir/$client.env.tmp" && mv -f "$dir/$client.env.tmp" "$dir/$client.env"
{ echo "## $now $reason${proto:+ $proto}"; cat "$dir/$client.env"; } >>"$dir/$client.envlog"
echo "$now $client $reason${proto:+ $proto}" >>"$dir/events.log"

# put FILE: write stdin (KEY=VALUE lines) to FILE atomically
put() { cat >"$1.tmp" && mv -f "$1.tmp" "$1"; }
# mark FILE STATE: keep FILE's data, update state/reason/time (create it if missing)
mark() {
    if [ -f "$1" ]; then
        sed -e "s/^state=.*/state=$2/" -e "s/^reason=.*/reason=$reason/" -e "s/^time=.*/time=$now/" \
            "$1" | put "$1"
    else
        printf 'client=%s\nstate=%s\nreason=%s\ntime=%s\n' "$client" "$2" "$reason" "$now" | put "$1"
    fi
}
# mask2len 255.255.255.0 -> 24
mask2len() {
    local_n=0
    for o in $(echo "$1" | tr . ' '); do
        case $o in
            255) local_n=$((local_n + 8)) ;; 254) local_n=$((local_n + 7)) ;;
            252) local_n=$((local_n + 6)) ;; 248) local_n=$((local_n + 5)) ;;
            240) local_n=$((local_n + 4)) ;; 224) local_n=$((local_n + 3)) ;;
            192) local_n=$((local_n + 2)) ;; 128) local_n=$((local_n + 1)) ;;
        esac
    done
    echo "$local_n"
}
# hexid 0:1:0:1:32:99 (dhclient) or 000100013299 (dhcpcd) -> 000100013299
hexid() { echo "${1:-}" | awk -F: 'NF > 1 { s = ""; for (i = 1; i <= NF; i++) s = s sprintf("%02s", $i); $0 = s; gsub(/ /, "0") } { print tolower($0) }'; }
nodot() { echo "${1:-}" | sed 's/\.\( \|$\)/\1/g'; }
first() { echo "${1:-}" | awk '{print $1}'; }
# lease4 IP PREFIXLEN ROUTERS DNS DOMAIN LEASE SERVER T1 T2
lease4() {
    printf 'client=%s\nstate=bound\nreason=%s\ntime=%s\nip=%s\nprefixlen=%s\nrouter=%s\ndns=%s\ndomain=%s\nlease=%s\nserver=%s\nt1=%s\nt2=%s\n' \
        "$client" "$reason" "$now" "$@" | put "$dir/$client.lease4"
}

# lease6 ADDR PREFIXLEN PREFERRED VALID T1 T2 DNS DOMAIN_SEARCH SERVER_ID (state: bound or,
# without an address, informed)
lease6() {
    if [ -n "$1" ]; then st=bound; else st=informed; fi
    # domain names without the root dot (dhclient writes "lan.example.")
    set -- "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$(nodot "$8")" "$9"
    printf 'client=%s\nstate=%s\nreason=%s\ntime=%s\naddr=%s\nprefixlen=%s\npreferred=%s\nvalid=%s\nt1=%s\nt2=%s\ndns=%s\ndomain_search=%s\nserver_id=%s\n' \
        "$client" "$st" "$reason" "$now" "$@" | put "$dir/$client.lease6"
}

# ---------------------------------------------------------------- applying (not dhcpcd)
v4_apply() { # OLD_IP NEW_IP PREFIXLEN ROUTERS
    if [ -n "$1" ] && [ "$1" != "$2" ]; then ip -4 addr flush dev "$ifc"; fi
    ip -4 addr replace "$2/$3" broadcast + dev "$ifc"
    r=$(first "$4")
    if [ -n "$r" ]; then ip -4 route replace default via "$r" dev "$ifc"; fi
}
v4_clear() { ip -4 addr flush dev "$ifc"; ip -4 route flush dev "$ifc" 2>/dev/null || true; }

case $client in
dhcpcd)
    case $reason in
        BOUND | RENEW | REBIND | REBOOT | INFORM | STATIC)
            lease4 "${new_ip_address:-}" "${new_subnet_cidr:-}" "${new_routers:-}" \
                "${new_domain_name_servers:-}" "${new_domain_name:-}" "${new_dhcp_lease_time:-}" \
                "${new_dhcp_server_identifier:-}" "${new_dhcp_renewal_time:-}" "${new_dhcp_rebinding_time:-}" ;;
        EXPIRE) mark "$dir/dhcpcd.lease4" expired ;;
        NAK) mark "$dir/dhcpcd.lease4" nak ;;
        RELEASE) mark "$dir/dhcpcd.lease4" released ;;
        BOUND6 | RENEW6 | REBIND6 | REBOOT6 | INFORM6)
            a=${new_dhcp6_ia_na1_ia_addr1:-}
            lease6 "$a" "${a:+128}" "${new_dhcp6_ia_na1_ia_addr1_pltime:-}" \
                "${new_dhcp6_ia_na1_ia_addr1_vltime:-}" "${new_dhcp6_ia_na1_t1:-}" "${new_dhcp6_ia_na1_t2:-}" \
                "${new_dhcp6_name_servers:-}" "${new_dhcp6_domain_search:-}" "$(hexid "${new_dhcp6_server_id:-}")" ;;
        EXPIRE6) mark "$dir/dhcpcd.lease6" expired ;;
        RELEASE6) mark "$dir/dhcpcd.lease6" released ;;
        ROUTERADVERT)
            # nd1_* describe the (first) router; none left when its RA expired.
            # nd1_addrN are the SLAAC addresses dhcpcd made from its prefixes.
            if [ -n "${nd1_from:-}" ]; then st=received; else st=none; fi
            slaac=$(env | sed -n 's/^nd1_addr[0-9]*=\([^/]*\).*/\1/p' | LC_ALL=C sort | tr '\n' ' ')
            pfx=${nd1_prefix_information1_prefix:-}
            [ -z "$pfx" ] || pfx=$pfx/${nd1_prefix_information1_length:-}
            printf 'client=%s\nstate=%s\nreason=%s\ntime=%s\nrouter=%s\nrouter_lifetime=%s\nflags=%s\nprefix=%s\nprefix_flags=%s\npreferred=%s\nvalid=%s\nslaac=%s\nrdnss=%s\ndnssl=%s\nmtu=%s\n' \
                "$client" "$st" "$reason" "$now" "${nd1_from:-}" "${nd1_lifetime:-}" "${nd1_flags:-}" \
                "$pfx" "${nd1_prefix_information1_flags:-}" "${nd1_prefix_information1_pltime:-}" \
                "${nd1_prefix_information1_vltime:-}" "${slaac% }" "${nd1_rdnss1_servers:-}" \
                "${nd1_dnssl1_search:-}" "${nd1_mtu:-}" | put "$dir/dhcpcd.ra" ;;
        STOP) # also after an IPv4 release (lab.sh lanhost release then marks it "released")
            [ ! -f "$dir/dhcpcd.lease4" ] || mark "$dir/dhcpcd.lease4" stopped ;;
        STOP6)
            [ ! -f "$dir/dhcpcd.lease6" ] || mark "$dir/dhcpcd.lease6" stopped ;;
    esac ;;
udhcpc)
    case $reason in
        deconfig)
            v4_clear
            ip link set dev "$ifc" up
            [ ! -f "$dir/udhcpc.lease4" ] || mark "$dir/udhcpc.lease4" deconfig ;;
        bound | renew)
            old=$(sed -n 's/^ip=//p' "$dir/udhcpc.lease4" 2>/dev/null || true)
            len=${mask:-$(mask2len "${subnet:-255.255.255.0}")}
            v4_apply "$old" "${ip:-}" "$len" "${router:-}"
            t1= t2=   # options 58/59 (hex), if the server sent them
            [ -z "${opt58:-}" ] || t1=$((0x$opt58))
            [ -z "${opt59:-}" ] || t2=$((0x$opt59))
            lease4 "${ip:-}" "$len" "${router:-}" "${dns:-}" "${domain:-}" "${lease:-}" \
                "${serverid:-}" "$t1" "$t2" ;;
        leasefail) [ ! -f "$dir/udhcpc.lease4" ] || mark "$dir/udhcpc.lease4" leasefail ;;
        nak) [ ! -f "$dir/udhcpc.lease4" ] || mark "$dir/udhcpc.lease4" nak ;;
    esac ;;
dhclient4)
    case $reason in
        MEDIUM | ARPCHECK | ARPSEND) ;;
        PREINIT) ip link set dev "$ifc" up ;;
        BOUND | RENEW | REBIND | REBOOT)
            len=$(mask2len "${new_subnet_mask:-255.255.255.0}")
            v4_apply "${old_ip_address:-}" "${new_ip_address:-}" "$len" "${new_routers:-}"
            lease4 "${new_ip_address:-}" "$len" "${new_routers:-}" "${new_domain_name_servers:-}" \
                "${new_domain_name:-}" "${new_dhcp_lease_time:-}" "${new_dhcp_server_identifier:-}" \
                "${new_dhcp_renewal_time:-}" "${new_dhcp_rebinding_time:-}" ;;
        EXPIRE | FAIL | RELEASE | STOP | TIMEOUT)
            v4_clear
            st=$(echo "$reason" | tr 'A-Z' 'a-z')
            [ "$st" != expire ] || st=expired
            [ "$st" != release ] || st=released
            [ "$st" != stop ] || st=stopped
            mark "$dir/dhclient4.lease4" "$st" ;;
    esac ;;
dhclient6)
    case $reason in
        PREINIT6) ip link set dev "$ifc" up ;;
        BOUND6 | RENEW6 | REBIND6 | REBOOT6 | INFORM6)
            if [ -n "${old_ip6_address:-}" ] && [ "${old_ip6_address:-}" != "${new_ip6_address:-}" ]; then
                ip -6 addr del "$old_ip6_address/${old_ip6_prefixlen:-128}" dev "$ifc" 2>/dev/null || true
            fi
            if [ -n "${new_ip6_address:-}" ]; then
                ip -6 addr replace "$new_ip6_address/${new_ip6_prefixlen:-128}" dev "$ifc" \
                    valid_lft "${new_max_life:-forever}" preferred_lft "${new_preferred_life:-forever}"
            fi
            lease6 "${new_ip6_address:-}" "${new_ip6_prefixlen:-}" "${new_preferred_life:-}" \
                "${new_max_life:-}" "${new_renew:-}" "${new_rebind:-}" "${new_dhcp6_name_servers:-}" \
                "${new_dhcp6_domain_search:-}" "$(hexid "${new_dhcp6_server_id:-}")" ;;
        DEPREF6)
            [ -z "${cur_ip6_address:-}" ] || ip -6 addr change "$cur_ip6_address/${cur_ip6_prefixlen:-128}" \
                dev "$ifc" preferred_lft 0 2>/dev/null || true
            mark "$dir/dhclient6.lease6" deprecated ;;
        EXPIRE6 | RELEASE6 | STOP6)
            if [ -n "${old_ip6_address:-}" ]; then
                ip -6 addr del "$old_ip6_address/${old_ip6_prefixlen:-128}" dev "$ifc" 2>/dev/null || true
            fi
            st=$(echo "${reason%6}" | tr 'A-Z' 'a-z')
            [ "$st" != expire ] || st=expired
            [ "$st" != release ] || st=released
            [ "$st" != stop ] || st=stopped
            mark "$dir/dhclient6.lease6" "$st" ;;
    esac ;;
esac
exit 0
