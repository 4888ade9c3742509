//! What ipoed needs to know about a kernel interface it takes over.

use std::net::Ipv6Addr;

use anyhow::{bail, Context, Result};
use ipoe_dataplane::wire::Mac;

#[derive(Clone, Debug)]
pub struct Interface {
    pub name: String,
    pub ifindex: u32,
    pub mac: Mac,
    pub mtu: u16,
    /// RX queues (what `ethtool -l` calls channels).
    pub queues: u32,
}

impl Interface {
    pub fn probe(name: &str, mtu: u16) -> Result<Self> {
        let sys = format!("/sys/class/net/{name}");
        if !std::path::Path::new(&sys).exists() {
            bail!("interface {name} does not exist (no {sys})");
        }
        let ifindex = ipoe_bpf::ifindex(name)?;
        let addr = std::fs::read_to_string(format!("{sys}/address"))
            .with_context(|| format!("{name}: reading its MAC address"))?;
        let mac = parse_mac(addr.trim())
            .with_context(|| format!("{name}: MAC address {:?}", addr.trim()))?;
        let queues = std::fs::read_dir(format!("{sys}/queues"))
            .with_context(|| format!("{name}: listing its queues"))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
            .count() as u32;
        Ok(Interface {
            name: name.to_string(),
            ifindex,
            mac,
            mtu,
            queues,
        })
    }
}

pub fn parse_mac(s: &str) -> Result<Mac> {
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        bail!("expected six hex octets");
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).context("expected hex octets")?;
    }
    Ok(mac)
}

pub fn format_mac(m: &Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Whether `name` has a carrier (`/sys/class/net/NAME/carrier`); `None` if
/// it cannot be read (then the caller assumes it has).
pub fn carrier(name: &str) -> Option<bool> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/carrier")).ok()?;
    Some(text.trim() == "1")
}

/// fe80::/64 with the modified EUI-64 interface identifier (RFC 4291 App. A).
pub fn link_local(mac: &Mac) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[..2].copy_from_slice(&[0xfe, 0x80]);
    a[8..].copy_from_slice(&ipoe_proto::slaac::eui64_iid(*mac));
    Ipv6Addr::from(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eui64_link_local() {
        let ll = link_local(&[0x02, 0, 0, 0, 0x02, 0x02]);
        assert_eq!(ll, "fe80::ff:fe00:202".parse::<Ipv6Addr>().unwrap());
        assert_eq!(parse_mac("02:00:00:00:02:02").unwrap(), [2, 0, 0, 0, 2, 2]);
        assert!(parse_mac("02:00:00:00:02").is_err());
        assert!(parse_mac("zz:00:00:00:02:02").is_err());
    }
}
