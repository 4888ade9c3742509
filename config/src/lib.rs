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
mod locate;
mod types;

use std::collections::HashSet;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::ConfigError;
pub use types::{
    Aftr, B4Source, CpuId, IfName, Ipv4Cidr, Ipv6Cidr, Ipv6Prefix64, LogLevel, PollMode,
    ValueError, XdpMode, ZeroCopy,
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
    let config: Config =
        serde_yaml::from_str(text).map_err(|e| ConfigError::schema(origin, text, &e))?;
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

/// Static IPv6 settings of the WAN; both are learned automatically later
/// (the address by SLAAC, the gateway from Router Advertisements).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of wan.ipv6 settings")]
pub struct WanIpv6 {
    #[serde(default, deserialize_with = "de::opt::<_, de::WanAddress>")]
    pub address: Option<Ipv6Cidr>,
    #[serde(default, deserialize_with = "de::opt::<_, de::Gateway>")]
    pub gateway: Option<Ipv6Addr>,
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
}

/// IPv6 on the LAN; the prefix is learned by DHCPv6-PD later.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
}

impl Default for Control {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/run/ipoed/ipoed.sock"),
            state_dir: PathBuf::from("/var/lib/ipoed"),
            group: None,
            max_neighbors: 1024,
            log_level: LogLevel::default(),
        }
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

    /// MTU of IPv4 inside the DS-Lite tunnel: the configured one, else
    /// `wan.mtu - 40` (the outer IPv6 header).
    pub fn tunnel_mtu(&self) -> u16 {
        self.dslite
            .as_ref()
            .and_then(|d| d.mtu)
            .unwrap_or(self.wan.mtu - de::IPV6_HEADER)
    }

    /// The configuration as YAML, all defaults spelled out; parses back to
    /// an equal `Config`.
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
mod tests;
