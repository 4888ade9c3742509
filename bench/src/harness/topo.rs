//! The bench topology: `bgen` (LAN side) -- `bdut` (device under test) --
//! `bsink` (WAN side), veth pairs with native XDP, two queues each so a
//! 2-worker ipoed has one queue per worker. The LAN-side namespace owns the
//! LAN host addresses and the WAN-side one the gateway's link-local, so the
//! DUT can resolve them (the endpoint XDP program passes ARP/NDP to their
//! kernels). Traffic flows bgen -> bsink (encap, IPv6 upstream) or
//! bsink -> bgen (decap).

use std::process::Command;

use anyhow::{bail, Context, Result};

pub const GEN_NS: &str = "bgen";
pub const DUT_NS: &str = "bdut";
pub const SINK_NS: &str = "bsink";
pub const GEN_IF: &str = "g0";
pub const SINK_IF: &str = "s0";
pub const DUT_LAN: &str = "dlan";
pub const DUT_WAN: &str = "dwan";
pub const GEN_MAC: &str = "02:00:00:00:0b:10";
pub const SINK_MAC: &str = "02:00:00:00:0b:20";
pub const DUT_LAN_MAC: &str = "02:00:00:00:0b:01";
pub const DUT_WAN_MAC: &str = "02:00:00:00:0b:02";
pub const QUEUES: u32 = 2;
/// LAN host addresses the generator uses (and bgen owns).
pub const HOSTS: u32 = 16;
/// The DUT's core; the generator and receiver run on the other one.
pub const DUT_CORE: usize = 1;
pub const GEN_CORE: usize = 0;

pub fn sh(cmd: &str) -> Result<String> {
    let out = Command::new("sh").arg("-c").arg(cmd).output()?;
    if !out.status.success() {
        bail!(
            "`{cmd}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ns(n: &str, cmd: &str) -> Result<String> {
    sh(&format!("ip netns exec {n} {cmd}"))
}

pub struct Topology;

impl Topology {
    pub fn up() -> Result<Topology> {
        Self::down();
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            bail!("no /sys/kernel/btf/vmlinux: the XDP programs need BTF");
        }
        for n in [GEN_NS, DUT_NS, SINK_NS] {
            sh(&format!("ip netns add {n}"))?;
            ns(n, "ip link set lo up")?;
        }
        let q = QUEUES;
        sh(&format!(
            "ip link add {GEN_IF} netns {GEN_NS} address {GEN_MAC} numtxqueues {q} numrxqueues {q} \
             type veth peer name {DUT_LAN} netns {DUT_NS} address {DUT_LAN_MAC} numtxqueues {q} numrxqueues {q}"
        ))?;
        sh(&format!(
            "ip link add {SINK_IF} netns {SINK_NS} address {SINK_MAC} numtxqueues {q} numrxqueues {q} \
             type veth peer name {DUT_WAN} netns {DUT_NS} address {DUT_WAN_MAC} numtxqueues {q} numrxqueues {q}"
        ))?;
        for (n, i) in [
            (GEN_NS, GEN_IF),
            (SINK_NS, SINK_IF),
            (DUT_NS, DUT_LAN),
            (DUT_NS, DUT_WAN),
        ] {
            // Real NICs fill in checksums; veth would leave them partial.
            ns(n, &format!("ethtool -K {i} tx off tso off gso off gro off"))?;
            if n == DUT_NS {
                ns(n, &format!("ip link set {i} addrgenmode none"))?;
            }
            ns(n, &format!("ip link set {i} up"))?;
        }
        // The LAN hosts (bgen) and the home gateway (bsink) as the DUT sees them.
        for h in 0..HOSTS {
            ns(
                GEN_NS,
                &format!("ip addr add 192.168.2.{}/24 dev {GEN_IF}", 10 + h),
            )?;
            ns(
                GEN_NS,
                &format!(
                    "ip addr add 2001:db8:0:111::{:x}/64 dev {GEN_IF} nodad",
                    0x10 + h
                ),
            )?;
        }
        ns(
            SINK_NS,
            &format!("ip addr add fe80::1/64 dev {SINK_IF} nodad"),
        )?;
        ns(
            SINK_NS,
            &format!("ip addr add 2001:db8:0:100::1/64 dev {SINK_IF} nodad"),
        )?;
        Ok(Topology)
    }

    pub fn down() {
        for n in [GEN_NS, DUT_NS, SINK_NS] {
            let _ = sh(&format!(
                "ip netns pids {n} 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del {n} 2>/dev/null"
            ));
        }
    }

    /// Kernel-forwarding DUT: addresses, routes, forwarding, and RPS so the
    /// forwarding runs on the DUT core rather than the sender's.
    pub fn kernel_router(&self, nft: bool) -> Result<()> {
        self.clear_dut()?;
        let mask = format!("{:x}", 1u32 << DUT_CORE);
        for i in [DUT_LAN, DUT_WAN] {
            for q in 0..QUEUES {
                ns(
                    DUT_NS,
                    &format!("sh -c 'echo {mask} > /sys/class/net/{i}/queues/rx-{q}/rps_cpus'"),
                )?;
            }
        }
        ns(DUT_NS, "sysctl -qw net.ipv6.conf.all.forwarding=1")?;
        ns(
            DUT_NS,
            &format!("ip addr add 2001:db8:0:111::1/64 dev {DUT_LAN} nodad"),
        )?;
        ns(
            DUT_NS,
            &format!("ip addr add fe80::ff:fe00:b01/64 dev {DUT_LAN} nodad"),
        )?;
        ns(
            DUT_NS,
            &format!("ip addr add 2001:db8:0:100::2/64 dev {DUT_WAN} nodad"),
        )?;
        ns(
            DUT_NS,
            &format!("ip addr add fe80::ff:fe00:b02/64 dev {DUT_WAN} nodad"),
        )?;
        ns(
            DUT_NS,
            &format!("ip -6 route replace default via fe80::1 dev {DUT_WAN}"),
        )?;
        if nft {
            // The user's ip6tables policy (shared/reference) in nftables:
            // default drop, LAN out, established/related back, ICMPv6 and
            // DHCPv6 to the router.
            let rules = [
                "table inet filter {".to_string(),
                "  chain input {".into(),
                "    type filter hook input priority 0; policy drop;".into(),
                "    iif lo accept".into(),
                format!("    iifname \"{DUT_LAN}\" accept"),
                format!("    iifname \"{DUT_WAN}\" udp dport 546 accept"),
                format!("    iifname \"{DUT_WAN}\" ct state established,related accept"),
                "    meta l4proto ipv6-icmp accept".into(),
                "    counter drop".into(),
                "  }".into(),
                "  chain forward {".into(),
                "    type filter hook forward priority 0; policy drop;".into(),
                format!("    iifname \"{DUT_LAN}\" accept"),
                format!("    iifname \"{DUT_WAN}\" ct state established,related accept"),
                "    counter drop".into(),
                "  }".into(),
                "}".into(),
            ]
            .join("\n");
            let path = "/tmp/ipoe-bench-nft.conf";
            std::fs::write(path, rules)?;
            ns(DUT_NS, &format!("nft -f {path}")).context("loading the nftables ruleset")?;
            // Conntrack must hold every flow of the largest sweep.
            ns(DUT_NS, "sysctl -qw net.netfilter.nf_conntrack_max=2097152").ok();
        }
        Ok(())
    }

    /// Back to a DUT namespace with no kernel config (for ipoed / ceiling).
    pub fn clear_dut(&self) -> Result<()> {
        ns(DUT_NS, "nft flush ruleset")?;
        ns(DUT_NS, "sysctl -qw net.ipv6.conf.all.forwarding=0")?;
        for i in [DUT_LAN, DUT_WAN] {
            ns(DUT_NS, &format!("ip addr flush dev {i}"))?;
            ns(DUT_NS, &format!("ip -6 route flush dev {i}"))?;
            for q in 0..QUEUES {
                ns(
                    DUT_NS,
                    &format!("sh -c 'echo 0 > /sys/class/net/{i}/queues/rx-{q}/rps_cpus'"),
                )?;
            }
        }
        // Neighbors learned by the peers stay valid (MACs are fixed).
        Ok(())
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        Self::down();
    }
}
