#!/usr/bin/env bash
# Installs the Debian packages ipoe-router's build, lab and tests need, skipping
# what is already there. Package mirrors fail transiently: retry with backoff.
set -euo pipefail

PKGS=(
  clang llvm libelf-dev zlib1g-dev pkg-config   # BPF program (libbpf-cargo, libbpf-sys)
  iproute2 ethtool nftables iputils-ping         # the lab's namespaces, veths, NAT
  socat curl python3 openssl                     # lab servers and clients, the lab CA (HB46PP over TLS)
  tshark tcpdump ndisc6                          # checking what we put on the wire
  radvd kea-dhcp6-server dnsmasq-base            # the lab's home gateway (RA, DHCPv6-PD, DNS)
  isc-dhcp-server wide-dhcpv6-server             # second and third DHCPv6 servers
  isc-dhcp-client dhcpcd-base busybox            # LAN clients: dhclient, dhcpcd, udhcpc (and the PD selftest)
  bind9-dnsutils                                 # dig, for the DNS proxy checks
  thc-ipv6 ipv6toolkit                           # attack tools against the router (reliability tests)
  fonts-dejavu-core                              # text in the bench plots and the status page's screenshot
  chromium                                       # headless browser: the status page test renders the page
)

install_packages() {
  missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PKGS[@]} packages present"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
    return 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  delay=5
  for attempt in 1 2 3 4 5; do
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
      return 0
    fi
    echo "install-deps: attempt $attempt failed, retrying in ${delay}s" >&2
    sleep "$delay"
    delay=$((delay * 2))
  done
  echo "install-deps: could not install ${missing[*]}" >&2
  return 1
}

# Cargo tools `make lint` runs: cargo-machete (unused dependencies; reads the
# sources, builds nothing). crates.io fails transiently too: retry.
CARGO_TOOLS=("cargo-machete@0.9.2")
install_cargo_tools() {
  local tool delay attempt
  for tool in "${CARGO_TOOLS[@]}"; do
    if command -v "${tool%@*}" >/dev/null 2>&1; then
      continue
    fi
    echo "install-deps: installing $tool"
    delay=5
    for attempt in 1 2 3 4 5; do
      if cargo install --locked --quiet "$tool"; then
        break
      fi
      if [ "$attempt" -eq 5 ]; then
        echo "install-deps: could not install $tool" >&2
        return 1
      fi
      echo "install-deps: attempt $attempt failed, retrying in ${delay}s" >&2
      sleep "$delay"
      delay=$((delay * 2))
    done
  done
}

# `install-deps.sh` installs the packages (build, lab, tests); `install-deps.sh
# lint` the cargo tools only `make lint` needs, so `make lab` does not wait
# for them.
case "${1:-packages}" in
  packages) install_packages ;;
  lint) install_cargo_tools ;;
  *) echo "usage: install-deps.sh [packages|lint]" >&2; exit 2 ;;
esac
