//! Configuration of `ipoed`, the ipoe-router daemon: the YAML schema, its
//! Rust types, and refusals that point at `FILE:LINE:COLUMN`.
//!
//! Validation happens in three passes over the same text:
//! 1. a schema-less parse, so YAML syntax errors are reported as such (a
//!    typed parse can stop at a schema error before reaching them);
//! 2. the typed parse, where the validating `Deserialize` impls of the value
//!    types refuse bad values and serde attaches their position;
//! 3. checks across fields (e.g. `wan.interface` != `lan.interface`), whose
//!    refusals are positioned by looking the key path up in the text.
//!
//! Every key is documented in `config/README.md`.

mod cpu;
mod de;
mod error;
mod firewall;
mod ipip;
mod lan;
mod locate;
mod map_e;
mod provisioning;
mod types;

use std::collections::HashSet;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::ConfigError;

/// Largest MTU the dataplane can receive: a 2048-byte UMEM chunk minus the
/// kernel's 256-byte XDP headroom holds a 1792-byte frame, 1778 bytes of IP
/// after the Ethernet header (`ipoe_dataplane::FRAME_SIZE`, `XDP_HEADROOM`;
/// the dataplane asserts that they agree). A larger frame is dropped by the
/// kernel before the AF_XDP socket, so a larger MTU would only blackhole.
pub const MAX_MTU: u16 = 1778;
pub use firewall::{Firewall, FirewallTimeouts, Pinhole, PinholeHost, PinholeProto, PortRange};
pub use ipip::{Ipip, LocalPrefix, Update as IpipUpdate};
pub use lan::{
    Dhcpv4, Dhcpv6Mode, DnsChoice, DomainName, HostName, Ipv4Range, Ipv6Mode, LeaseTime,
    LeaseTimeOrInt, MacAddr, RaSettings, StaticLease,
};
pub use map_e::{
    ForwardProto, MapE, MapIidFormat, MapRuleChoice, MapRuleEntry, MapRuleSpec, PortForward,
};
pub use provisioning::Provisioning;
pub use types::{
    Aftr, B4Source, CpuId, DuidType, IfName, IidMode, Ipv4Cidr, Ipv6Cidr, Ipv6Prefix64, LogLevel,
    PollMode, ValueError, XdpMode, ZeroCopy,
};

use locate::Target;

/// Reads, parses and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: file.clone(),
        source,
    })?;
    parse(&text, &file)
}

/// Parses and validates configuration text; `origin` names it in messages.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let document: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| ConfigError::syntax(origin, text, &e))?;
    if document.is_null() {
        return Err(ConfigError::invalid(
            origin,
            (1, 1),
            None,
            "no settings found, the document is empty \
             (expected a mapping with at least the `wan` and `lan` sections)"
                .to_owned(),
        ));
    }
    let mut config: Config =
        serde_yaml::from_str(text).map_err(|e| ConfigError::schema(origin, text, &e))?;
    config.settle_defaults(text);
    config
        .check()
        .map_err(|refusal| refusal.into_error(origin, text))?;
    Ok(config)
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of sections (wan, lan, ...)"
)]
pub struct Config {
    pub wan: Wan,
    pub lan: Lan,
    /// `None`: no DS-Lite; IPv4 from the LAN is dropped.
    #[serde(default)]
    pub dslite: Option<DsLite>,
    /// `None`: no MAP-E. Refused together with `dslite`.
    #[serde(default)]
    pub map_e: Option<MapE>,
    /// `None`: no fixed IPv4 over IPIP. Refused together with `dslite` or
    /// `map_e`.
    #[serde(default)]
    pub ipip: Option<Ipip>,
    /// How the IPv4 method is found when none of `dslite`, `map_e`, `ipip`
    /// is given. Absent: all defaults (HB46PP on).
    #[serde(default, deserialize_with = "de::section")]
    pub provisioning: Provisioning,
    /// Absent: all defaults (on).
    #[serde(default, deserialize_with = "de::section")]
    pub firewall: Firewall,
    #[serde(default, deserialize_with = "de::section")]
    pub dataplane: Dataplane,
    #[serde(default, deserialize_with = "de::section")]
    pub control: Control,
}

/// The upstream interface, toward the ISP (or its home gateway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of wan settings")]
pub struct Wan {
    pub interface: IfName,
    #[serde(
        default = "default_mtu",
        deserialize_with = "de::checked::<_, de::Mtu>"
    )]
    pub mtu: u16,
    #[serde(default, deserialize_with = "de::section")]
    pub ipv6: WanIpv6,
}

/// IPv6 on the WAN: learned from Router Advertisements (SLAAC, default
/// router) and DHCPv6-PD; a static `address`/`gateway` overrides what is
/// learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "a mapping of wan.ipv6 settings"
)]
pub struct WanIpv6 {
    #[serde(deserialize_with = "de::opt::<_, de::WanAddress>")]
    pub address: Option<Ipv6Cidr>,
    #[serde(deserialize_with = "de::opt::<_, de::Gateway>")]
    pub gateway: Option<Ipv6Addr>,
    /// Form an address from the RA's autonomous prefix (RFC 4862).
    pub slaac: bool,
    /// Interface identifier of the SLAAC address.
    pub iid: IidMode,
    /// `None` (written `dhcpv6_pd: false`) disables the client.
    #[serde(
        deserialize_with = "de::section_or_off",
        serialize_with = "serialize_section_or_off"
    )]
    pub dhcpv6_pd: Option<Dhcpv6Pd>,
}

impl Default for WanIpv6 {
    fn default() -> Self {
        Self {
            address: None,
            gateway: None,
            slaac: true,
            iid: IidMode::default(),
            dhcpv6_pd: Some(Dhcpv6Pd::default()),
        }
    }
}

/// The DHCPv6 client (RFC 8415) asking the home gateway for a prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "a mapping of wan.ipv6.dhcpv6_pd settings"
)]
pub struct Dhcpv6Pd {
    /// Prefix length asked for (0: no hint). NTT's gateways give a /60 to
    /// the router behind them.
    #[serde(deserialize_with = "de::checked::<_, de::PrefixHint>")]
    pub prefix_hint: u8,
    pub duid_type: DuidType,
    /// RFC 9096 says not to release on restart or shutdown: the LAN keeps
    /// its addresses. Some ISPs want the lease back.
    pub release_on_shutdown: bool,
    /// Also ask for a WAN address (IA_NA).
    pub request_na: bool,
    /// Offer Rapid Commit (two messages instead of four).
    pub rapid_commit: bool,
}

impl Default for Dhcpv6Pd {
    fn default() -> Self {
        Self {
            prefix_hint: 60,
            duid_type: DuidType::default(),
            release_on_shutdown: false,
            request_na: false,
            rapid_commit: true,
        }
    }
}

/// The home network side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of lan settings")]
pub struct Lan {
    pub interface: IfName,
    #[serde(
        default = "default_mtu",
        deserialize_with = "de::checked::<_, de::Mtu>"
    )]
    pub mtu: u16,
    #[serde(deserialize_with = "de::checked::<_, de::LanIpv4>")]
    pub ipv4: Ipv4Cidr,
    #[serde(default, deserialize_with = "de::section")]
    pub ipv6: LanIpv6,
    /// The DHCPv4 server; `false` turns it off.
    #[serde(
        default = "default_dhcpv4",
        deserialize_with = "de::section_or_off",
        serialize_with = "serialize_section_or_off"
    )]
    pub dhcpv4: Option<Dhcpv4>,
    /// The DNS forwarder on the router's LAN addresses (UDP and TCP 53).
    #[serde(default = "default_true")]
    pub dns_proxy: bool,
    /// A read-only status page over HTTP on the router's LAN addresses
    /// (port 80); never on the WAN.
    #[serde(default = "default_true")]
    pub status_page: bool,
}

fn default_dhcpv4() -> Option<Dhcpv4> {
    Some(Dhcpv4::default())
}

/// The TCP port of the status page (`lan.status_page`) on the LAN addresses.
pub const STATUS_PAGE_PORT: u16 = 80;

fn default_true() -> bool {
    true
}

/// IPv6 on the LAN; the prefix is learned by DHCPv6-PD later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of lan.ipv6 settings")]
pub struct LanIpv6 {
    #[serde(default)]
    pub prefix: Option<Ipv6Prefix64>,
    /// Defaults to `prefix::1`, see [`Config::lan_ipv6_address`].
    #[serde(default, deserialize_with = "de::opt::<_, de::LanAddress>")]
    pub address: Option<Ipv6Addr>,
    /// Which /64 of a delegated prefix to use on the LAN.
    #[serde(default, deserialize_with = "de::checked::<_, de::SubnetId>")]
    pub subnet_id: u32,
    #[serde(default, deserialize_with = "de::section")]
    pub ra: RaSettings,
    #[serde(default)]
    pub dhcpv6: Dhcpv6Mode,
    /// DNS servers announced by RA (RDNSS) and DHCPv6.
    #[serde(default = "default_dns6")]
    pub dns: DnsChoice<Ipv6Addr>,
    /// Where the LAN prefix comes from: delegated, the WAN RA's /64
    /// proxied, or `prefix`.
    #[serde(default)]
    pub mode: Ipv6Mode,
}

fn default_dns6() -> DnsChoice<Ipv6Addr> {
    DnsChoice::Router
}

impl Default for LanIpv6 {
    fn default() -> Self {
        Self {
            prefix: None,
            address: None,
            subnet_id: 0,
            ra: RaSettings::default(),
            dhcpv6: Dhcpv6Mode::default(),
            dns: DnsChoice::Router,
            mode: Ipv6Mode::Auto,
        }
    }
}

/// DS-Lite (RFC 6333) B4: IPv4 from the LAN is tunnelled to the AFTR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of dslite settings")]
pub struct DsLite {
    pub aftr: Aftr,
    #[serde(default)]
    pub b4_address: B4Source,
    /// Inner IPv4 MTU; `None` means `wan.mtu - 40`, see [`Config::tunnel_mtu`].
    #[serde(default, deserialize_with = "de::opt::<_, de::TunnelMtu>")]
    pub mtu: Option<u16>,
    /// TCP MSS written into SYNs through the tunnel (both directions) when
    /// theirs is larger; `None` (written `false`) leaves SYNs alone. Left
    /// out: 1420 (1500 - 40 outer IPv6 - 20 IPv4 - 20 TCP), lowered to
    /// `tunnel_mtu - 40` when the tunnel is smaller; see
    /// [`Config::mss_clamp_v4`].
    #[serde(
        default = "default_mss_clamp_v4",
        deserialize_with = "de::checked::<_, de::MssOrOff>",
        serialize_with = "serialize_section_or_off"
    )]
    pub mss_clamp: Option<u16>,
}

/// The MSS of a 1460-byte tunnel (the default `wan.mtu - 40`).
pub const DEFAULT_MSS_CLAMP_V4: u16 = 1420;

fn default_mss_clamp_v4() -> Option<u16> {
    Some(DEFAULT_MSS_CLAMP_V4)
}

/// The AF_XDP packet path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "a mapping of dataplane settings"
)]
pub struct Dataplane {
    #[serde(deserialize_with = "de::checked::<_, de::Workers>")]
    pub workers: usize,
    /// One CPU per worker; empty lets the daemon choose.
    pub cores: Vec<CpuId>,
    pub xdp_mode: XdpMode,
    pub zero_copy: ZeroCopy,
    #[serde(deserialize_with = "de::checked::<_, de::Batch>")]
    pub batch: u32,
    pub poll: PollMode,
    #[serde(deserialize_with = "de::checked::<_, de::FillRing>")]
    pub fill_ring: u32,
    #[serde(deserialize_with = "de::checked::<_, de::FramesPerWorker>")]
    pub frames_per_worker: u32,
}

impl Default for Dataplane {
    fn default() -> Self {
        Self {
            workers: 1,
            cores: Vec::new(),
            xdp_mode: XdpMode::default(),
            zero_copy: ZeroCopy::default(),
            batch: 64,
            poll: PollMode::default(),
            fill_ring: 4096,
            frames_per_worker: 16384,
        }
    }
}

/// The control socket and daemon housekeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "a mapping of control settings"
)]
pub struct Control {
    #[serde(deserialize_with = "de::checked::<_, de::SocketPath>")]
    pub socket: PathBuf,
    #[serde(deserialize_with = "de::checked::<_, de::StateDir>")]
    pub state_dir: PathBuf,
    #[serde(deserialize_with = "de::opt::<_, de::Group>")]
    pub group: Option<String>,
    /// Per interface.
    #[serde(deserialize_with = "de::checked::<_, de::MaxNeighbors>")]
    pub max_neighbors: u32,
    pub log_level: LogLevel,
    /// Prometheus metrics over HTTP at `ADDRESS:PORT`: loopback, or the
    /// router's LAN address (never the WAN). Off when absent.
    pub metrics: Option<std::net::SocketAddr>,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/run/ipoed/ipoed.sock"),
            state_dir: PathBuf::from("/var/lib/ipoed"),
            group: None,
            max_neighbors: 1024,
            log_level: LogLevel::default(),
            metrics: None,
        }
    }
}

/// `None` as `false`: `null` would read back as "all defaults".
fn serialize_section_or_off<S: serde::Serializer, T: Serialize>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(section) => section.serialize(serializer),
        None => serializer.serialize_bool(false),
    }
}

fn default_mtu() -> u16 {
    1500
}

impl Config {
    /// The router's LAN IPv6 address: the configured one, else `prefix::1`;
    /// `None` without a prefix.
    pub fn lan_ipv6_address(&self) -> Option<Ipv6Addr> {
        let ipv6 = &self.lan.ipv6;
        ipv6.address
            .or_else(|| ipv6.prefix.map(|p| p.with_interface_id(1)))
    }

    /// The DHCPv4 pool: the configured range, else hosts .100 to .250 of a
    /// /24 (the user's dnsmasq range), or the upper half of other subnets.
    pub fn dhcpv4_range(&self) -> Option<Ipv4Range> {
        let d = self.lan.dhcpv4.as_ref()?;
        if let Some(r) = d.range {
            return Some(r);
        }
        let net = u32::from(self.lan.ipv4.network());
        let bcast = u32::from(self.lan.ipv4.broadcast());
        let hosts = bcast - net - 1;
        let (first, last) = if self.lan.ipv4.len == 24 {
            (net + 100, net + 250)
        } else {
            (net + 1 + hosts / 2, bcast - 1)
        };
        Some(Ipv4Range {
            first: first.into(),
            last: last.into(),
        })
    }

    /// Whether the config names its IPv4 method (`dslite`, `map_e` or
    /// `ipip`): then discovery does not run.
    pub fn ipv4_method_given(&self) -> bool {
        self.dslite.is_some() || self.map_e.is_some() || self.ipip.is_some()
    }

    /// MTU of IPv4 inside the DS-Lite tunnel: the configured one, else
    /// `wan.mtu - 40` (the outer IPv6 header).
    /// With `ipip`: `ipip.mtu`, else 1460 (the fixed-IP services'), no
    /// more than `wan.mtu - 40`.
    pub fn tunnel_mtu(&self) -> u16 {
        let link = self.wan.mtu - de::IPV6_HEADER;
        if let Some(ipip) = &self.ipip {
            return ipip.mtu.unwrap_or(Ipip::DEFAULT_MTU.min(link));
        }
        self.dslite.as_ref().and_then(|d| d.mtu).unwrap_or(link)
    }

    /// The TCP MSS clamp for IPv4 through the DS-Lite tunnel; `None` without
    /// DS-Lite or with `dslite.mss_clamp: false`.
    pub fn mss_clamp_v4(&self) -> Option<u16> {
        match &self.ipip {
            Some(ipip) => ipip.mss_clamp,
            None => self.dslite.as_ref().and_then(|d| d.mss_clamp),
        }
    }

    /// The configuration as `show config` prints it: the secrets of
    /// `ipip.update` (the URL's credentials, the password) masked.
    pub fn masked(&self) -> Config {
        let mut c = self.clone();
        c.ipip = c.ipip.as_ref().map(Ipip::masked);
        c
    }

    /// Defaults that depend on other keys, which serde cannot see: a
    /// `dslite.mss_clamp` left out is lowered to fit a smaller tunnel.
    fn settle_defaults(&mut self, text: &str) {
        let max = self.tunnel_mtu().saturating_sub(de::TCP_IP_HEADERS);
        if let Some(dslite) = self.dslite.as_mut() {
            let written = locate::locate(text, "dslite.mss_clamp", Target::Key).is_some();
            if !written {
                dslite.mss_clamp = dslite.mss_clamp.map(|mss| mss.min(max));
            }
        }
        if let Some(ipip) = self.ipip.as_mut() {
            if locate::locate(text, "ipip.mss_clamp", Target::Key).is_none() {
                ipip.mss_clamp = ipip.mss_clamp.map(|mss| mss.min(max));
            }
        }
    }

    /// The configuration as YAML, all defaults spelled out; parses back to
    /// an equal `Config` (but for `provisioning`'s masked secrets).
    pub fn to_yaml(&self) -> String {
        // Only strings, integers, sequences and string-keyed mappings: the
        // serializer has nothing to refuse.
        serde_yaml::to_string(self).expect("a Config always serializes to YAML")
    }

    /// Checks across fields, which no single `Deserialize` impl can see.
    fn check(&self) -> Result<(), Refusal> {
        if self.wan.interface == self.lan.interface {
            return Err(Refusal::value(
                "lan.interface",
                format!(
                    "{} is also wan.interface (expected two different interfaces)",
                    self.lan.interface
                ),
            ));
        }

        let ipv6 = &self.lan.ipv6;
        match (ipv6.prefix, ipv6.address) {
            (None, Some(address)) => {
                return Err(Refusal::value(
                    "lan.ipv6.address",
                    format!(
                        "{address} is set without lan.ipv6.prefix \
                         (expected lan.ipv6.prefix too, with the address inside it)"
                    ),
                ))
            }
            (Some(prefix), Some(address)) if !prefix.contains(&address) => {
                return Err(Refusal::value(
                    "lan.ipv6.address",
                    format!(
                        "{address} is outside lan.ipv6.prefix {prefix} \
                         (expected an address inside the prefix, such as {})",
                        prefix.with_interface_id(1)
                    ),
                ))
            }
            (Some(prefix), Some(address)) if address == prefix.addr() => {
                return Err(Refusal::value(
                    "lan.ipv6.address",
                    format!(
                        "{address} is the subnet-router anycast address of {prefix} \
                         (expected a host address such as {})",
                        prefix.with_interface_id(1)
                    ),
                ))
            }
            _ => {}
        }

        self.check_lan_services()?;

        if let Some(dslite) = &self.dslite {
            let pd = self.wan.ipv6.dhcpv6_pd.is_some();
            if dslite.aftr == Aftr::Dhcpv6 && !pd {
                return Err(Refusal::value(
                    "dslite.aftr",
                    "dhcpv6 needs the DHCPv6 client, but wan.ipv6.dhcpv6_pd is off \
                     (expected an address or a DNS name, or dhcpv6_pd enabled)"
                        .to_owned(),
                ));
            }
            let wan_addr = self.wan.ipv6.address.is_some()
                || self.wan.ipv6.slaac
                || self
                    .wan
                    .ipv6
                    .dhcpv6_pd
                    .as_ref()
                    .is_some_and(|p| p.request_na);
            if dslite.b4_address == B4Source::Wan && !wan_addr {
                return Err(Refusal::value(
                    "dslite.b4_address",
                    "wan needs a WAN address, but wan.ipv6 has no address, slaac is off \
                     and DHCPv6 IA_NA is not requested (expected delegated, or a WAN address)"
                        .to_owned(),
                ));
            }
            let lan_prefix = self.lan.ipv6.prefix.is_some() || pd;
            if dslite.b4_address == B4Source::Delegated && !lan_prefix {
                return Err(Refusal::value(
                    "dslite.b4_address",
                    "delegated needs a prefix, but wan.ipv6.dhcpv6_pd is off and \
                     lan.ipv6.prefix is not set (expected wan, or a prefix)"
                        .to_owned(),
                ));
            }
        }

        if let Some(mtu) = self.dslite.as_ref().and_then(|d| d.mtu) {
            let max = self.wan.mtu - de::IPV6_HEADER;
            if mtu > max {
                return Err(Refusal::value(
                    "dslite.mtu",
                    format!(
                        "{mtu} does not fit in wan.mtu {} with the 40-byte IPv6 header \
                         (expected a tunnel MTU between 1240 and {max})",
                        self.wan.mtu
                    ),
                ));
            }
        }

        if let Some(mtu) = self.ipip.as_ref().and_then(|d| d.mtu) {
            let max = self.wan.mtu - de::IPV6_HEADER;
            if mtu > max {
                return Err(Refusal::value(
                    "ipip.mtu",
                    format!(
                        "{mtu} does not fit in wan.mtu {} with the 40-byte IPv6 header \
                         (expected a tunnel MTU between 1240 and {max})",
                        self.wan.mtu
                    ),
                ));
            }
        }

        if let Some(mss) = self.mss_clamp_v4() {
            let mtu = self.tunnel_mtu();
            let max = mtu - de::TCP_IP_HEADERS;
            if mss > max {
                return Err(Refusal::value(
                    if self.ipip.is_some() {
                        "ipip.mss_clamp"
                    } else {
                        "dslite.mss_clamp"
                    },
                    format!(
                        "{mss} does not fit in the tunnel MTU {mtu} with the 20-byte IPv4 \
                         and 20-byte TCP headers (expected false, or an MSS between {} and {max})",
                        de::MSS_MIN
                    ),
                ));
            }
        }

        self.check_firewall()?;
        self.check_map_e()?;
        self.check_ipip()?;
        provisioning::check(&self.provisioning).map_err(|(k, m)| Refusal::value(k, m))?;

        if let Some(m) = self.control.metrics {
            let ip = m.ip();
            let lan = ip == std::net::IpAddr::V4(self.lan.ipv4.addr)
                || Some(ip) == self.lan_ipv6_address().map(std::net::IpAddr::V6);
            if !ip.is_loopback() && !lan {
                return Err(Refusal::value(
                    "control.metrics",
                    format!(
                        "{ip} is neither loopback nor the router's LAN address \
                         (expected 127.0.0.1:PORT, [::1]:PORT or {}:PORT; \
                         metrics are never served on the WAN)",
                        self.lan.ipv4.addr
                    ),
                ));
            }
            if m.port() == 0 {
                return Err(Refusal::value(
                    "control.metrics",
                    "port 0 (expected a port such as 9100)".to_owned(),
                ));
            }
            // Port 80 of the LAN addresses is the status page's.
            if !ip.is_loopback() && m.port() == STATUS_PAGE_PORT && self.lan.status_page {
                return Err(Refusal::value(
                    "control.metrics",
                    format!(
                        "port {STATUS_PAGE_PORT} on the LAN address is the status page's \
                         (expected another port such as 9100, or lan.status_page: false)"
                    ),
                ));
            }
        }

        let dataplane = &self.dataplane;
        let mut seen = HashSet::new();
        for (index, cpu) in dataplane.cores.iter().enumerate() {
            if !seen.insert(cpu) {
                return Err(Refusal::value(
                    format!("dataplane.cores[{index}]"),
                    format!("CPU {cpu} is listed twice (expected each CPU at most once)"),
                ));
            }
        }
        if !dataplane.cores.is_empty() && dataplane.cores.len() != dataplane.workers {
            return Err(Refusal::value(
                "dataplane.cores",
                format!(
                    "{} CPUs listed for {} worker{} (expected one CPU per worker, \
                     or no list to let the daemon choose)",
                    dataplane.cores.len(),
                    dataplane.workers,
                    if dataplane.workers == 1 { "" } else { "s" },
                ),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// `map_e`: not with `dslite`; an explicit rule consistent (by
    /// `ipoe_proto::map::Rule::new`) and with a BR; port forwards that some
    /// port set can hold, to LAN hosts, each (proto, port) once.
    fn check_map_e(&self) -> Result<(), Refusal> {
        let Some(map_e) = &self.map_e else {
            return Ok(());
        };
        if self.dslite.is_some() {
            return Err(Refusal::value(
                "map_e",
                "map_e and dslite are both set (expected one way of carrying IPv4: \
                 remove dslite or map_e)"
                    .to_owned(),
            ));
        }
        let wan6 = &self.wan.ipv6;
        if wan6.dhcpv6_pd.is_none() && !wan6.slaac && wan6.address.is_none() {
            return Err(Refusal::value(
                "map_e",
                "MAP-E needs an end-user prefix, but wan.ipv6.dhcpv6_pd and slaac are off \
                 and wan.ipv6.address is not set (expected a delegated prefix or the WAN /64)"
                    .to_owned(),
            ));
        }
        let rule = match &map_e.rule {
            MapRuleChoice::Auto => None,
            MapRuleChoice::Rule(spec) => {
                let rule = spec.rule().map_err(|e| {
                    let field = match e {
                        ipoe_proto::map::RuleError::OffsetTooLarge { .. } => "psid_offset",
                        _ => "ea_length",
                    };
                    Refusal::value(
                        format!("map_e.rule.{field}"),
                        format!(
                            "{e} (expected a consistent rule: IPv6 prefix length + \
                             ea_length <= 64, a PSID of ea_length - (32 - IPv4 prefix \
                             length) <= 16 bits, psid_offset + PSID length <= 16)"
                        ),
                    )
                })?;
                if map_e.br.is_none() {
                    return Err(Refusal::value(
                        "map_e.br",
                        "an explicit rule without br (expected br: with the BR's IPv6 \
                         address, such as 2001:db8:77:bb::1)"
                            .to_owned(),
                    ));
                }
                Some(rule)
            }
        };
        self.check_port_forwards(
            "map_e",
            &map_e.port_forwards,
            MapE::MAX_PORT_FORWARDS,
            |f| {
                let possible = match &rule {
                    Some(rule) => rule.port_possible(f.port),
                    None => ipoe_proto::map::jp_rules::port_possible_under_some_rule(f.port),
                };
                if !possible {
                    let why = match &rule {
                        Some(r) => format!(
                            "with psid_offset {} the ports 0-{} belong to no CE",
                            r.psid_offset(),
                            (1u32 << (16 - r.psid_offset())) - 1
                        ),
                        None => "the built-in rules give no CE a port below 1024".to_owned(),
                    };
                    return Err(format!(
                        "port {} can be in no port set under the rule: {why} (expected a \
                         port of the router's set, `ipoectl show map` lists it)",
                        f.port
                    ));
                }
                Ok(())
            },
        )
    }

    /// A section's port forwards: at most `max`, each port allowed by
    /// `port_ok` (the refusal's text otherwise), each (proto, port) once,
    /// each to a LAN host other than the router.
    fn check_port_forwards(
        &self,
        section: &str,
        forwards: &[PortForward],
        max: usize,
        port_ok: impl Fn(&PortForward) -> Result<(), String>,
    ) -> Result<(), Refusal> {
        if forwards.len() > max {
            return Err(Refusal::value(
                format!("{section}.port_forwards[{max}]"),
                format!(
                    "{} port forwards listed (expected at most {max})",
                    forwards.len()
                ),
            ));
        }
        let lan = &self.lan.ipv4;
        let mut seen = HashSet::new();
        for (i, f) in forwards.iter().enumerate() {
            let path = format!("{section}.port_forwards[{i}]");
            port_ok(f).map_err(|why| Refusal::value(format!("{path}.port"), why))?;
            if !seen.insert((f.proto, f.port)) {
                return Err(Refusal::value(
                    format!("{path}.port"),
                    format!(
                        "{} port {} is forwarded twice (expected each port once per protocol)",
                        f.proto, f.port
                    ),
                ));
            }
            let host = *f.to.ip();
            if !lan.contains(&host)
                || host == lan.network()
                || host == lan.broadcast()
                || host == lan.addr
            {
                return Err(Refusal::value(
                    format!("{path}.to"),
                    format!(
                        "{host} is not a host of the LAN {}/{} other than the router \
                         (expected a LAN host such as {}:8080)",
                        lan.network(),
                        lan.len,
                        std::net::Ipv4Addr::from(u32::from(lan.network()) + 20)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `ipip`: alone (not with `dslite` or `map_e`); a prefix to form the
    /// local address in; Basic auth with both of its halves; port forwards
    /// on any port, to LAN hosts, each (proto, port) once.
    fn check_ipip(&self) -> Result<(), Refusal> {
        let Some(ipip) = &self.ipip else {
            return Ok(());
        };
        let other = match (&self.dslite, &self.map_e) {
            (Some(_), _) => Some("dslite"),
            (_, Some(_)) => Some("map_e"),
            _ => None,
        };
        if let Some(other) = other {
            return Err(Refusal::value(
                "ipip",
                format!(
                    "ipip and {other} are both set (expected one way of carrying IPv4: \
                     one of dslite, map_e, ipip)"
                ),
            ));
        }
        let wan6 = &self.wan.ipv6;
        match ipip.local_prefix {
            LocalPrefix::Pd if wan6.dhcpv6_pd.is_none() => {
                return Err(Refusal::value(
                    "ipip.local_prefix",
                    "pd, but wan.ipv6.dhcpv6_pd is off (expected wan, or dhcpv6_pd on)".to_owned(),
                ))
            }
            LocalPrefix::Wan if !wan6.slaac && wan6.address.is_none() => {
                return Err(Refusal::value(
                    "ipip.local_prefix",
                    "wan, but wan.ipv6.slaac is off and wan.ipv6.address is not set \
                     (expected a WAN /64, or local_prefix: pd)"
                        .to_owned(),
                ))
            }
            _ => {}
        }
        let lan = &self.lan.ipv4;
        if lan.contains(&ipip.ipv4) {
            return Err(Refusal::value(
                "ipip.ipv4",
                format!(
                    "{} is inside the LAN {}/{} (expected the contract's global address)",
                    ipip.ipv4,
                    lan.network(),
                    lan.len
                ),
            ));
        }
        if let Some(u) = &ipip.update {
            if u.username.is_some() != u.password.is_some() {
                return Err(Refusal::value(
                    "ipip.update",
                    "only one of username and password (expected both for HTTP Basic, \
                     or neither)"
                        .to_owned(),
                ));
            }
        }
        // The address is ours whole: any port may be forwarded.
        self.check_port_forwards("ipip", &ipip.port_forwards, Ipip::MAX_PORT_FORWARDS, |_| {
            Ok(())
        })
    }

    fn check_firewall(&self) -> Result<(), Refusal> {
        let pinholes = &self.firewall.pinholes;
        if pinholes.len() > Firewall::MAX_PINHOLES {
            return Err(Refusal::value(
                format!("firewall.pinholes[{}]", Firewall::MAX_PINHOLES),
                format!(
                    "{} pinholes listed (expected at most {})",
                    pinholes.len(),
                    Firewall::MAX_PINHOLES
                ),
            ));
        }
        for (i, p) in pinholes.iter().enumerate() {
            let path = format!("firewall.pinholes[{i}].port");
            match (p.proto, p.port) {
                (PinholeProto::Tcp | PinholeProto::Udp, None) => {
                    return Err(Refusal::value(
                        path,
                        format!(
                            "a {} pinhole without a port (expected port: with a port such \
                             as 443 or a range such as 8000-8010)",
                            p.proto
                        ),
                    ))
                }
                (PinholeProto::Icmpv6, Some(port)) => {
                    return Err(Refusal::value(
                        path,
                        format!(
                            "port {port} on an icmpv6 pinhole, which admits echo requests \
                             to the host (expected no port with proto: icmpv6)"
                        ),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn check_lan_services(&self) -> Result<(), Refusal> {
        let lan = &self.lan;
        let proxy_needed = |path: &str| {
            Refusal::value(
                path,
                "router needs the DNS proxy, but lan.dns_proxy is false \
                 (expected a list of servers, or dns_proxy: true)"
                    .to_owned(),
            )
        };
        if !lan.dns_proxy && lan.ipv6.dns == DnsChoice::Router {
            return Err(proxy_needed("lan.ipv6.dns"));
        }
        match (lan.ipv6.mode, lan.ipv6.prefix.is_some()) {
            (Ipv6Mode::Static, false) => {
                return Err(Refusal::value(
                    "lan.ipv6.mode",
                    "static needs lan.ipv6.prefix (expected auto, pd or proxy, or a prefix)"
                        .to_owned(),
                ))
            }
            (Ipv6Mode::Pd | Ipv6Mode::Proxy, true) => {
                return Err(Refusal::value(
                    "lan.ipv6.mode",
                    "lan.ipv6.prefix is set, which only static (or auto) uses \
                     (expected static or auto, or no prefix)"
                        .to_owned(),
                ))
            }
            _ => {}
        }
        let Some(d) = &lan.dhcpv4 else {
            return Ok(());
        };
        if !lan.dns_proxy && d.dns == DnsChoice::Router {
            return Err(proxy_needed("lan.dhcpv4.dns"));
        }
        let cidr = &lan.ipv4;
        let usable = |a: &std::net::Ipv4Addr| {
            cidr.contains(a) && *a != cidr.network() && *a != cidr.broadcast()
        };
        if let Some(r) = d.range {
            if !usable(&r.first) || !usable(&r.last) {
                return Err(Refusal::value(
                    "lan.dhcpv4.range",
                    format!(
                        "{r} is not inside the host addresses of {}/{} (expected a range \
                         between {} and {})",
                        cidr.network(),
                        cidr.len,
                        std::net::Ipv4Addr::from(u32::from(cidr.network()) + 1),
                        std::net::Ipv4Addr::from(u32::from(cidr.broadcast()) - 1)
                    ),
                ));
            }
        }
        let mut macs = HashSet::new();
        let mut ips = HashSet::new();
        for (i, s) in d.static_leases.iter().enumerate() {
            let path = format!("lan.dhcpv4.static[{i}]");
            if !usable(&s.ip) || s.ip == cidr.addr {
                return Err(Refusal::value(
                    format!("{path}.ip"),
                    format!(
                        "{} is not a free host address of {}/{} (expected an address of the \
                         LAN other than the router's {})",
                        s.ip,
                        cidr.network(),
                        cidr.len,
                        cidr.addr
                    ),
                ));
            }
            if !macs.insert(s.mac) {
                return Err(Refusal::value(
                    format!("{path}.mac"),
                    format!("{} has two static leases (expected each MAC once)", s.mac),
                ));
            }
            if !ips.insert(s.ip) {
                return Err(Refusal::value(
                    format!("{path}.ip"),
                    format!("{} is reserved twice (expected each address once)", s.ip),
                ));
            }
        }
        Ok(())
    }
}

/// A refusal from [`Config::check`], positioned once the text is at hand.
#[derive(Debug)]
struct Refusal {
    path: String,
    message: String,
}

impl Refusal {
    fn value(path: impl Into<String>, message: String) -> Self {
        Self {
            path: path.into(),
            message,
        }
    }

    /// Points at the value of the path or, if it is not in the text (a
    /// default), at the nearest enclosing key that is.
    fn into_error(self, origin: &str, text: &str) -> ConfigError {
        let mut pos = locate::locate(text, &self.path, Target::Value);
        let mut path = self.path.as_str();
        while pos.is_none() {
            let Some(cut) = path.rfind(['.', '[']) else {
                break;
            };
            path = &path[..cut];
            pos = locate::locate(text, path, Target::Key);
        }
        ConfigError::invalid(origin, pos.unwrap_or((1, 1)), Some(self.path), self.message)
    }
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ipip;
#[cfg(test)]
mod tests_lan_mode;
#[cfg(test)]
mod tests_map_e;
#[cfg(test)]
mod tests_mtu;
#[cfg(test)]
mod tests_provisioning;
#[cfg(test)]
mod tests_status_page;
