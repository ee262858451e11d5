//! Pure parsing of rtnetlink link, address and route messages into owned facts. No sockets here:
//! tests feed messages they build (this kernel cannot create VLANs or bonds).

use std::net::IpAddr;

use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{
    InfoBond, InfoData, InfoKind, InfoPortKind, InfoVlan, LinkAttribute, LinkFlags, LinkInfo,
    LinkLayerType, LinkMessage, State, VlanProtocol,
};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage, RouteType};
use rtnetlink::packet_route::AddressFamily;

use crate::inventory::model::Family;

/// What rtnetlink says about one link.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkFacts {
    pub index: u32,
    pub name: String,
    /// IFLA_INFO_KIND (`vlan`, `bond`, `bridge`, `veth`, ...); `None` for plain hardware NICs.
    pub info_kind: Option<String>,
    pub mac: Option<String>,
    pub permanent_mac: Option<String>,
    pub mtu: Option<u32>,
    pub up: bool,
    pub lower_up: bool,
    pub broadcast: bool,
    pub multicast: bool,
    pub loopback: bool,
    pub point_to_point: bool,
    /// `ether`, `loopback`, `none`, ... (lower-case ARPHRD name).
    pub link_type: String,
    /// Lower-case RFC 2863 state (`up`, `down`, `lowerlayerdown`, `unknown`, ...).
    pub oper_state: String,
    pub carrier: Option<bool>,
    /// IFLA_LINK: the lower device (VLAN parent, veth peer, ...).
    pub link_index: Option<u32>,
    /// IFLA_LINK_NETNSID present: `link_index` refers to another namespace.
    pub link_in_other_netns: bool,
    /// IFLA_MASTER: the bond or bridge this link is enslaved to.
    pub controller_index: Option<u32>,
    pub vlan_id: Option<u16>,
    pub vlan_protocol: Option<String>,
    pub bond_mode: Option<String>,
    /// IFLA_INFO_PORT_KIND: `bond`, `bridge`, ... when enslaved.
    pub port_kind: Option<String>,
}

/// One address as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrFacts {
    pub index: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
    pub family: Family,
    pub scope: String,
    /// Still in duplicate address detection (or failed it): not usable as a source yet.
    pub tentative: bool,
}

impl AddrFacts {
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.address, self.prefix_len)
    }
}

/// A default route's output interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRoute {
    pub family: Family,
    pub oif: u32,
}

pub fn format_mac(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes.iter().all(|b| *b == 0) {
        return None;
    }
    Some(
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

fn info_kind_name(kind: &InfoKind) -> String {
    match kind {
        InfoKind::Other(s) => s.clone(),
        k => k.to_string(),
    }
}

fn port_kind_name(kind: &InfoPortKind) -> String {
    match kind {
        InfoPortKind::Bond => "bond".into(),
        InfoPortKind::Bridge => "bridge".into(),
        InfoPortKind::Vrf => "vrf".into(),
        InfoPortKind::Team => "team".into(),
        InfoPortKind::Other(s) => s.clone(),
        _ => "other".into(),
    }
}

fn link_type_name(t: LinkLayerType) -> String {
    match t {
        LinkLayerType::Ether => "ether".into(),
        LinkLayerType::Loopback => "loopback".into(),
        LinkLayerType::None => "none".into(),
        other => other.to_string().to_lowercase(),
    }
}

fn oper_state_name(s: &State) -> String {
    s.to_string().to_lowercase()
}

fn vlan_protocol_name(p: VlanProtocol) -> String {
    match p {
        VlanProtocol::Ieee8021Q => "802.1Q".into(),
        VlanProtocol::Ieee8021Ad => "802.1ad".into(),
        _ => format!("0x{:04x}", u16::from(p)),
    }
}

/// Parse a link message. `None` when the kernel sent no name (never seen in practice).
pub fn parse_link(msg: &LinkMessage) -> Option<LinkFacts> {
    let flags = msg.header.flags;
    let mut f = LinkFacts {
        index: msg.header.index,
        up: flags.contains(LinkFlags::Up),
        lower_up: flags.contains(LinkFlags::LowerUp),
        broadcast: flags.contains(LinkFlags::Broadcast),
        multicast: flags.contains(LinkFlags::Multicast),
        loopback: flags.contains(LinkFlags::Loopback),
        point_to_point: flags.contains(LinkFlags::Pointopoint),
        link_type: link_type_name(msg.header.link_layer_type),
        oper_state: "unknown".into(),
        ..Default::default()
    };
    let mut name = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Address(a) => f.mac = format_mac(a),
            LinkAttribute::PermAddress(a) => f.permanent_mac = format_mac(a),
            LinkAttribute::Mtu(m) => f.mtu = Some(*m),
            LinkAttribute::OperState(s) => f.oper_state = oper_state_name(s),
            LinkAttribute::Carrier(c) => f.carrier = Some(*c != 0),
            LinkAttribute::Link(i) => f.link_index = Some(*i),
            LinkAttribute::LinkNetNsId(_) => f.link_in_other_netns = true,
            LinkAttribute::Controller(i) => f.controller_index = Some(*i),
            LinkAttribute::LinkInfo(infos) => parse_link_info(infos, &mut f),
            _ => {}
        }
    }
    f.name = name?;
    Some(f)
}

fn parse_link_info(infos: &[LinkInfo], f: &mut LinkFacts) {
    for info in infos {
        match info {
            LinkInfo::Kind(k) => f.info_kind = Some(info_kind_name(k)),
            LinkInfo::PortKind(k) => f.port_kind = Some(port_kind_name(k)),
            LinkInfo::Data(InfoData::Vlan(vlan)) => {
                for v in vlan {
                    match v {
                        InfoVlan::Id(id) => f.vlan_id = Some(*id),
                        InfoVlan::Protocol(p) => f.vlan_protocol = Some(vlan_protocol_name(*p)),
                        _ => {}
                    }
                }
            }
            LinkInfo::Data(InfoData::Bond(bond)) => {
                for b in bond {
                    if let InfoBond::Mode(m) = b {
                        f.bond_mode = Some(m.to_string());
                    }
                }
            }
            _ => {}
        }
    }
}

fn scope_name(s: AddressScope) -> String {
    match s {
        AddressScope::Universe => "global".into(),
        AddressScope::Site => "site".into(),
        AddressScope::Link => "link".into(),
        AddressScope::Host => "host".into(),
        AddressScope::Nowhere => "nowhere".into(),
        AddressScope::Other(n) => n.to_string(),
        _ => "unknown".into(),
    }
}

/// Parse an address message. For IPv4 the interface's own address is IFA_LOCAL (IFA_ADDRESS is
/// the peer on point-to-point links); IPv6 only sends IFA_ADDRESS.
pub fn parse_address(msg: &AddressMessage) -> Option<AddrFacts> {
    let family = match msg.header.family {
        AddressFamily::Inet => Family::Inet,
        AddressFamily::Inet6 => Family::Inet6,
        _ => return None,
    };
    let mut local = None;
    let mut address = None;
    // IFA_FLAGS (32 bit) supersedes the 8-bit header flags when present.
    let h = msg.header.flags;
    let mut tentative =
        h.contains(AddressHeaderFlags::Tentative) || h.contains(AddressHeaderFlags::Dadfailed);
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Flags(f) => {
                tentative =
                    f.contains(AddressFlags::Tentative) || f.contains(AddressFlags::Dadfailed)
            }
            _ => {}
        }
    }
    let addr = match family {
        Family::Inet => local.or(address),
        Family::Inet6 => address.or(local),
    }?;
    Some(AddrFacts {
        index: msg.header.index,
        address: addr,
        prefix_len: msg.header.prefix_len,
        family,
        scope: scope_name(msg.header.scope),
        tentative,
    })
}

const RT_TABLE_MAIN: u32 = 254;

/// The output interfaces of a default route in the main table (one per next hop).
pub fn parse_default_route(msg: &RouteMessage) -> Vec<DefaultRoute> {
    let family = match msg.header.address_family {
        AddressFamily::Inet => Family::Inet,
        AddressFamily::Inet6 => Family::Inet6,
        _ => return Vec::new(),
    };
    if msg.header.destination_prefix_length != 0 || msg.header.kind != RouteType::Unicast {
        return Vec::new();
    }
    let mut table = u32::from(msg.header.table);
    let mut oifs = Vec::new();
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(i) => oifs.push(*i),
            RouteAttribute::MultiPath(hops) => oifs.extend(hops.iter().map(|h| h.interface_index)),
            _ => {}
        }
    }
    if table != RT_TABLE_MAIN {
        return Vec::new();
    }
    oifs.into_iter()
        .map(|oif| DefaultRoute { family, oif })
        .collect()
}
