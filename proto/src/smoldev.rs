//! The pieces the router's two smoltcp TCP servers share (DNS over TCP and
//! the LAN metrics listener): a `phy::Device` made of packet queues, since
//! packets come from and go to the punt path rather than a NIC, and a quick
//! look at a segment's addresses and flags.

use std::collections::VecDeque;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{IpAddress, IpEndpoint, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket};

/// IP MTU of the LAN side (sets the MSS).
pub const MTU: usize = 1500;

/// A `phy::Device` made of two packet queues: `rx` is what the stack
/// receives, `tx` what it sent.
#[derive(Debug, Default)]
pub struct QueueDevice {
    pub rx: VecDeque<Vec<u8>>,
    pub tx: Vec<Vec<u8>>,
}

impl Device for QueueDevice {
    type RxToken<'a>
        = RxToken
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: SmolInstant) -> Option<(RxToken, TxToken<'_>)> {
        let buffer = self.rx.pop_front()?;
        Some((
            RxToken { buffer },
            TxToken {
                queue: &mut self.tx,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: SmolInstant) -> Option<TxToken<'_>> {
        Some(TxToken {
            queue: &mut self.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        caps
    }
}

pub struct RxToken {
    buffer: Vec<u8>,
}

impl phy::RxToken for RxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.buffer)
    }
}

pub struct TxToken<'a> {
    queue: &'a mut Vec<Vec<u8>>,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buffer = vec![0; len];
        let result = f(&mut buffer);
        self.queue.push(buffer);
        result
    }
}

/// What a TCP front needs to know about a segment before the stack sees it.
#[derive(Clone, Copy, Debug)]
pub struct SegmentMeta {
    pub src: IpEndpoint,
    pub dst: IpEndpoint,
    pub syn: bool,
    pub ack: bool,
    pub rst: bool,
}

/// Addresses, ports and flags of an unfragmented IPv4 or IPv6 packet
/// carrying TCP (no IPv6 extension headers).
pub fn segment_meta(packet: &[u8]) -> Option<SegmentMeta> {
    let (src, dst, payload) = match packet.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            (
                IpAddress::Ipv4(ip.src_addr()),
                IpAddress::Ipv4(ip.dst_addr()),
                ip.payload(),
            )
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            (
                IpAddress::Ipv6(ip.src_addr()),
                IpAddress::Ipv6(ip.dst_addr()),
                ip.payload(),
            )
        }
        _ => return None,
    };
    let tcp = TcpPacket::new_checked(payload).ok()?;
    Some(SegmentMeta {
        src: IpEndpoint::new(src, tcp.src_port()),
        dst: IpEndpoint::new(dst, tcp.dst_port()),
        syn: tcp.syn(),
        ack: tcp.ack(),
        rst: tcp.rst(),
    })
}

/// A TCP socket listening on `port`, answering at once (no Nagle), giving
/// up a connection that makes no progress for `timeout` (a SYN flood holds
/// a slot that long at most).
pub fn listener(
    port: u16,
    timeout: std::time::Duration,
    rx: usize,
    tx: usize,
) -> tcp::Socket<'static> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; rx]),
        tcp::SocketBuffer::new(vec![0; tx]),
    );
    socket.set_nagle_enabled(false);
    socket.set_timeout(Some(smol_duration(timeout)));
    // Fails only for port 0, which then serves nothing.
    let _ = socket.listen(port);
    socket
}

pub fn smol_duration(d: std::time::Duration) -> smoltcp::time::Duration {
    smoltcp::time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A server slot whose socket's connection is over goes back to listening
/// on `port` (a socket in TIME-WAIT is replaced: on a LAN the slot is worth
/// more than TIME-WAIT's protection against old duplicates). Returns
/// whether the slot's connection, if it had one, has ended.
pub fn recycle(
    sockets: &mut smoltcp::iface::SocketSet<'static>,
    handle: &mut smoltcp::iface::SocketHandle,
    port: u16,
    timeout: std::time::Duration,
    buffers: (usize, usize),
) -> bool {
    match sockets.get::<tcp::Socket>(*handle).state() {
        tcp::State::Closed => {
            let socket = sockets.get_mut::<tcp::Socket>(*handle);
            socket.set_timeout(Some(smol_duration(timeout)));
            let _ = socket.listen(port);
            true
        }
        tcp::State::TimeWait => {
            // Our last ACK went out with the poll that got here.
            sockets.remove(*handle);
            *handle = sockets.add(listener(port, timeout, buffers.0, buffers.1));
            true
        }
        tcp::State::Listen | tcp::State::SynReceived | tcp::State::SynSent => true,
        _ => false,
    }
}

/// A client stack for the servers' tests (here and in ipoe-control's
/// metrics tests): `Medium::Ip` with the given addresses (a /24 and a /64)
/// and a fixed random seed.
#[doc(hidden)]
pub fn test_client(
    seed: u64,
    v4: smoltcp::wire::Ipv4Address,
    v6: smoltcp::wire::Ipv6Address,
) -> (smoltcp::iface::Interface, QueueDevice) {
    use smoltcp::wire::{HardwareAddress, IpCidr};
    let mut dev = QueueDevice::default();
    let mut config = smoltcp::iface::Config::new(HardwareAddress::Ip);
    config.random_seed = seed;
    let mut iface = smoltcp::iface::Interface::new(config, &mut dev, SmolInstant::ZERO);
    iface.update_ip_addrs(|addrs| {
        addrs.push(IpCidr::new(IpAddress::Ipv4(v4), 24)).unwrap();
        addrs.push(IpCidr::new(IpAddress::Ipv6(v6), 64)).unwrap();
    });
    (iface, dev)
}
