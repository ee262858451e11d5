//! Reachability between lab hosts with plain sockets made inside their namespaces, so tests
//! need no `ping` (iputils is not installed everywhere) and no helper program.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, SocketAddrV6, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::host::Host;
use super::LabError;

impl Host {
    /// Open a TCP connection from this host to `to` at `addr` (one of `to`'s addresses) and
    /// return the peer address `to` saw, i.e. the source address this host chose. For a
    /// link-local `addr` the scope on each side is the interface on the shared bridge.
    pub fn tcp_check(
        &self,
        to: &Host,
        addr: IpAddr,
        timeout: Duration,
    ) -> Result<SocketAddr, LabError> {
        let (listen_scope, connect_scope) = match addr {
            IpAddr::V6(v6) if v6.is_unicast_link_local() => {
                let theirs = to
                    .links()
                    .iter()
                    .find(|l| l.link_local == v6)
                    .ok_or_else(|| {
                        LabError::State(format!(
                            "{addr} is not a link-local address of {}",
                            to.name()
                        ))
                    })?;
                let ours = self.link(theirs.bridge).ok_or_else(|| {
                    LabError::State(format!(
                        "{} has no link on {}'s bridge {:?}",
                        self.name(),
                        to.name(),
                        theirs.bridge
                    ))
                })?;
                (to.ifindex(&theirs.ifname)?, self.ifindex(&ours.ifname)?)
            }
            _ => (0, 0),
        };
        let at = |port, scope| match addr {
            IpAddr::V4(v4) => SocketAddr::from((v4, port)),
            IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)),
        };
        let listener = to
            .in_netns(|| TcpListener::bind(at(0, listen_scope)))?
            .map_err(|e| LabError::io(format!("{}: binding {addr}", to.name()), e))?;
        let port = listener
            .local_addr()
            .map_err(|e| LabError::io("listener address", e))?
            .port();
        let target = at(port, connect_scope);
        let _stream = self
            .in_netns(|| TcpStream::connect_timeout(&target, timeout))?
            .map_err(|e| LabError::io(format!("{} → {} at {target}", self.name(), to.name()), e))?;
        // The handshake is done, so the connection is already queued; don't block regardless.
        listener
            .set_nonblocking(true)
            .map_err(|e| LabError::io("listener", e))?;
        let deadline = Instant::now() + timeout;
        loop {
            match listener.accept() {
                Ok((_, peer)) => return Ok(peer),
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) => {
                    return Err(LabError::io(
                        format!("{}: accepting from {}", to.name(), self.name()),
                        e,
                    ))
                }
            }
        }
    }
}
