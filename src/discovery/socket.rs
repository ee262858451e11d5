//! The mDNS sockets (I/O edge): one per address family, bound to the wildcard address on 5353
//! with SO_REUSEADDR and SO_REUSEPORT (so avahi may run beside us), group membership per
//! ifindex, IP_MULTICAST_ALL off, PKTINFO to learn each packet's interface, an explicit egress
//! interface on every send, TTL/hop limit 255 (RFC 6762 §11, reference/mdns.md §3).

use std::collections::BTreeSet;
use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn, SockaddrIn6, SockaddrStorage,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::inventory::model::Family;

pub const MDNS_PORT: u16 = 5353;
pub const MDNS_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
pub const MDNS_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);
/// RFC 6762 §17: no mDNS packet exceeds 9000 bytes.
pub const MAX_PACKET: usize = 9000;

/// One received datagram with where it came from and on which interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub src: SocketAddr,
    pub ifindex: u32,
    /// Sent to the mDNS group (as opposed to one of our unicast addresses).
    pub to_group: bool,
}

/// The wire endpoint of an outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    Group,
    Unicast(SocketAddr),
}

pub struct McastSocket {
    family: Family,
    /// Another mDNS stack (avahi, resolved) held port 5353 when we opened: unicast replies to
    /// us may land in its socket, so we should not ask for them (RFC 6762 §15.1).
    other_stack: bool,
    sock: UdpSocket,
    /// Interfaces whose group we joined (join/leave run on the engine's task, recv elsewhere).
    joined: std::sync::Mutex<BTreeSet<u32>>,
}

fn group_addr(family: Family) -> IpAddr {
    match family {
        Family::Inet => IpAddr::V4(MDNS_V4),
        Family::Inet6 => IpAddr::V6(MDNS_V6),
    }
}

impl McastSocket {
    /// Open and bind the socket of one family. Must run inside a tokio runtime.
    pub fn open(family: Family) -> std::io::Result<Self> {
        let (domain, bind): (Domain, SocketAddr) = match family {
            Family::Inet => (
                Domain::IPV4,
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, MDNS_PORT).into(),
            ),
            Family::Inet6 => (
                Domain::IPV6,
                SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, MDNS_PORT, 0, 0).into(),
            ),
        };
        // Binding once without address/port sharing tells whether anyone else is there.
        let other_stack = {
            let probe = Socket::new(domain, Type::DGRAM.cloexec(), Some(Protocol::UDP))?;
            if family == Family::Inet6 {
                probe.set_only_v6(true)?;
            }
            matches!(probe.bind(&bind.into()), Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
        };
        let s = Socket::new(
            domain,
            Type::DGRAM.nonblocking().cloexec(),
            Some(Protocol::UDP),
        )?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        match family {
            Family::Inet => {
                // Without this a socket receives every group joined by any socket on the host.
                s.set_multicast_all_v4(false)?;
                s.set_multicast_ttl_v4(255)?;
                s.set_ttl_v4(255)?;
                s.set_multicast_loop_v4(true)?;
                setsockopt(&s, sockopt::Ipv4PacketInfo, &true).map_err(std::io::Error::from)?;
            }
            Family::Inet6 => {
                s.set_only_v6(true)?;
                s.set_multicast_all_v6(false)?;
                s.set_multicast_hops_v6(255)?;
                s.set_unicast_hops_v6(255)?;
                s.set_multicast_loop_v6(true)?;
                setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true).map_err(std::io::Error::from)?;
            }
        }
        s.bind(&bind.into())?;
        Ok(McastSocket {
            family,
            other_stack,
            sock: UdpSocket::from_std(std::net::UdpSocket::from(s))?,
            joined: std::sync::Mutex::new(BTreeSet::new()),
        })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn other_stack(&self) -> bool {
        self.other_stack
    }

    /// Join the group on `ifindex`. Joining twice reports EADDRINUSE, which means joined.
    pub fn join(&self, ifindex: u32) -> std::io::Result<()> {
        let s = socket2::SockRef::from(&self.sock);
        let r = match self.family {
            Family::Inet => {
                s.join_multicast_v4_n(&MDNS_V4, &InterfaceIndexOrAddress::Index(ifindex))
            }
            Family::Inet6 => s.join_multicast_v6(&MDNS_V6, ifindex),
        };
        match r {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::EADDRINUSE) => {}
            Err(e) => return Err(e),
        }
        self.joined_set().insert(ifindex);
        Ok(())
    }

    /// Leave the group on `ifindex`; an interface that vanished has left it already.
    pub fn leave(&self, ifindex: u32) {
        if self.joined_set().remove(&ifindex) {
            let s = socket2::SockRef::from(&self.sock);
            let _ = match self.family {
                Family::Inet => {
                    s.leave_multicast_v4_n(&MDNS_V4, &InterfaceIndexOrAddress::Index(ifindex))
                }
                Family::Inet6 => s.leave_multicast_v6(&MDNS_V6, ifindex),
            };
        }
    }

    pub fn joined(&self, ifindex: u32) -> bool {
        self.joined_set().contains(&ifindex)
    }

    fn joined_set(&self) -> std::sync::MutexGuard<'_, BTreeSet<u32>> {
        // A poisoned set is still a valid set of integers.
        self.joined.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Receive one datagram into `buf` with its arrival interface.
    pub async fn recv(&self, buf: &mut [u8]) -> std::io::Result<Received> {
        let fd = self.sock.as_raw_fd();
        self.sock
            .async_io(Interest::READABLE, || recv_with_pktinfo(fd, buf))
            .await
    }

    /// Send `buf` out of `ifindex` (group or unicast), from port 5353.
    pub async fn send(&self, buf: &[u8], ifindex: u32, dest: Dest) -> std::io::Result<()> {
        let to = match dest {
            Dest::Group => SocketAddr::new(group_addr(self.family), MDNS_PORT),
            Dest::Unicast(a) => a,
        };
        let fd = self.sock.as_raw_fd();
        self.sock
            .async_io(Interest::WRITABLE, || {
                send_with_pktinfo(fd, buf, ifindex, to)
            })
            .await
    }
}

fn recv_with_pktinfo(fd: i32, buf: &mut [u8]) -> std::io::Result<Received> {
    let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo, nix::libc::in_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(std::io::Error::from)?;
    let mut ifindex = 0;
    let mut to_group = false;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv4PacketInfo(pi) => {
                ifindex = pi.ipi_ifindex as u32;
                to_group = Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr)).is_multicast();
            }
            ControlMessageOwned::Ipv6PacketInfo(pi) => {
                ifindex = pi.ipi6_ifindex;
                to_group = Ipv6Addr::from(pi.ipi6_addr.s6_addr).is_multicast();
            }
            _ => {}
        }
    }
    let src = msg
        .address
        .and_then(|a| {
            if let Some(v4) = a.as_sockaddr_in() {
                Some(SocketAddr::V4(SocketAddrV4::from(*v4)))
            } else {
                a.as_sockaddr_in6()
                    .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
            }
        })
        .ok_or_else(|| std::io::Error::other("datagram without a source address"))?;
    Ok(Received {
        len: msg.bytes,
        src,
        ifindex,
        to_group,
    })
}

fn send_with_pktinfo(fd: i32, buf: &[u8], ifindex: u32, to: SocketAddr) -> std::io::Result<()> {
    let iov = [IoSlice::new(buf)];
    let n = match to {
        SocketAddr::V4(v4) => {
            let pi = nix::libc::in_pktinfo {
                ipi_ifindex: ifindex as i32,
                ipi_spec_dst: nix::libc::in_addr { s_addr: 0 },
                ipi_addr: nix::libc::in_addr { s_addr: 0 },
            };
            let addr = SockaddrIn::from(v4);
            sendmsg(
                fd,
                &iov,
                &[ControlMessage::Ipv4PacketInfo(&pi)],
                MsgFlags::empty(),
                Some(&addr),
            )
        }
        SocketAddr::V6(mut v6) => {
            if v6.scope_id() == 0 && (v6.ip().segments()[0] & 0xffc0) == 0xfe80 {
                v6.set_scope_id(ifindex);
            }
            let pi = nix::libc::in6_pktinfo {
                ipi6_addr: nix::libc::in6_addr { s6_addr: [0; 16] },
                ipi6_ifindex: ifindex,
            };
            let addr = SockaddrIn6::from(v6);
            sendmsg(
                fd,
                &iov,
                &[ControlMessage::Ipv6PacketInfo(&pi)],
                MsgFlags::empty(),
                Some(&addr),
            )
        }
    }
    .map_err(std::io::Error::from)?;
    if n != buf.len() {
        return Err(std::io::Error::other(format!(
            "short send: {n} of {} bytes",
            buf.len()
        )));
    }
    Ok(())
}
