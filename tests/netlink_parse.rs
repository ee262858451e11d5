//! VLAN, bond and bridge facts from rtnetlink messages built here (this kernel cannot create
//! VLANs or bonds): each message goes through the wire format and back, then through our parser
//! and the NIC rules, exactly as a dump from a real host would.

use std::net::{IpAddr, Ipv4Addr};

use microcloud::inventory::model::{Family, NicKind};
use microcloud::inventory::probe::nic::{assemble, NicSysfs};
use microcloud::inventory::rules::uplink_reasons;
use microcloud::net::link::{parse_address, parse_default_route, parse_link};
use microcloud::net::snapshot::Snapshot;
use rtnetlink::packet_core::{Emitable, Parseable};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use rtnetlink::packet_route::link::{
    BondMode, InfoBond, InfoData, InfoKind, InfoPortKind, InfoVlan, LinkAttribute, LinkFlags,
    LinkInfo, LinkLayerType, LinkMessage, State, VlanProtocol,
};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage, RouteType};
use rtnetlink::packet_route::AddressFamily;

fn wire<T: Emitable>(m: &T) -> Vec<u8> {
    let mut buf = vec![0u8; m.buffer_len()];
    m.emit(&mut buf);
    buf
}

fn link(
    index: u32,
    name: &str,
    mut attrs: Vec<LinkAttribute>,
    infos: Vec<LinkInfo>,
) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.link_layer_type = LinkLayerType::Ether;
    m.header.flags =
        LinkFlags::Up | LinkFlags::Broadcast | LinkFlags::Multicast | LinkFlags::LowerUp;
    attrs.insert(0, LinkAttribute::IfName(name.into()));
    attrs.push(LinkAttribute::Mtu(9000));
    attrs.push(LinkAttribute::Address(vec![
        0x52,
        0x54,
        0,
        0,
        0,
        index as u8,
    ]));
    attrs.push(LinkAttribute::OperState(State::Up));
    attrs.push(LinkAttribute::Carrier(1));
    if !infos.is_empty() {
        attrs.push(LinkAttribute::LinkInfo(infos));
    }
    m.attributes = attrs;
    // Through the wire format and back, as a dump delivers it.
    LinkMessage::parse(&wire(&m)).expect("link message parses back")
}

fn host() -> Snapshot {
    let msgs = vec![
        link(2, "eth0", vec![], vec![]),
        link(
            3,
            "eth1",
            vec![LinkAttribute::Controller(5)],
            vec![LinkInfo::PortKind(InfoPortKind::Bond)],
        ),
        link(
            4,
            "eth2",
            vec![LinkAttribute::Controller(5)],
            vec![LinkInfo::PortKind(InfoPortKind::Bond)],
        ),
        link(
            5,
            "bond0",
            vec![],
            vec![
                LinkInfo::Kind(InfoKind::Bond),
                LinkInfo::Data(InfoData::Bond(vec![
                    InfoBond::Mode(BondMode::Ieee8023Ad),
                    InfoBond::MiiMon(100),
                ])),
            ],
        ),
        link(
            6,
            "eth0.100",
            vec![LinkAttribute::Link(2)],
            vec![
                LinkInfo::Kind(InfoKind::Vlan),
                LinkInfo::Data(InfoData::Vlan(vec![
                    InfoVlan::Id(100),
                    InfoVlan::Protocol(VlanProtocol::Ieee8021Q),
                ])),
            ],
        ),
        link(
            7,
            "bond0.200",
            vec![LinkAttribute::Link(5)],
            vec![
                LinkInfo::Kind(InfoKind::Vlan),
                LinkInfo::Data(InfoData::Vlan(vec![
                    InfoVlan::Id(200),
                    InfoVlan::Protocol(VlanProtocol::Ieee8021Ad),
                ])),
            ],
        ),
        link(8, "br0", vec![], vec![LinkInfo::Kind(InfoKind::Bridge)]),
        link(
            9,
            "eth3",
            vec![LinkAttribute::Controller(8)],
            vec![LinkInfo::PortKind(InfoPortKind::Bridge)],
        ),
        // A VLAN whose parent lives in another namespace: the index means nothing here.
        link(
            10,
            "vlan300",
            vec![LinkAttribute::Link(2), LinkAttribute::LinkNetNsId(1)],
            vec![
                LinkInfo::Kind(InfoKind::Vlan),
                LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(300)])),
            ],
        ),
    ];
    let mut addr = AddressMessage::default();
    addr.header.family = AddressFamily::Inet;
    addr.header.prefix_len = 24;
    addr.header.scope = AddressScope::Universe;
    addr.header.index = 6;
    addr.attributes = vec![
        AddressAttribute::Address(IpAddr::V4(Ipv4Addr::new(10, 0, 100, 5))),
        AddressAttribute::Local(IpAddr::V4(Ipv4Addr::new(10, 0, 100, 5))),
    ];
    let addr = AddressMessage::parse(&wire(&addr)).unwrap();
    let mut route = RouteMessage::default();
    route.header.address_family = AddressFamily::Inet;
    route.header.table = 254;
    route.header.kind = RouteType::Unicast;
    route.attributes = vec![RouteAttribute::Oif(6)];
    let route = RouteMessage::parse(&wire(&route)).unwrap();
    Snapshot {
        links: msgs
            .iter()
            .filter_map(parse_link)
            .map(|l| (l.index, l))
            .collect(),
        addresses: parse_address(&addr).into_iter().collect(),
        default_routes: parse_default_route(&route),
    }
}

fn nic(snap: &Snapshot, name: &str) -> microcloud::inventory::Nic {
    let l = snap.links.values().find(|l| l.name == name).expect(name);
    // Only plain hardware links have a sysfs `device`.
    let sys = NicSysfs {
        has_device: l.info_kind.is_none(),
        ..Default::default()
    };
    let mut n = assemble(l, snap, sys, None);
    n.uplink = microcloud::inventory::model::Verdict::from_reasons(uplink_reasons(&n));
    n
}

#[test]
fn vlan_id_protocol_and_parent() {
    let s = host();
    let v = nic(&s, "eth0.100");
    assert_eq!(v.kind, NicKind::Vlan);
    let vlan = v.vlan.as_ref().unwrap();
    assert_eq!(vlan.id, 100);
    assert_eq!(vlan.parent.as_deref(), Some("eth0"));
    assert_eq!(vlan.protocol.as_deref(), Some("802.1Q"));
    let q = nic(&s, "bond0.200");
    let vlan = q.vlan.as_ref().unwrap();
    assert_eq!((vlan.id, vlan.parent.as_deref()), (200, Some("bond0")));
    assert_eq!(vlan.protocol.as_deref(), Some("802.1ad"));
    assert!(q.uplink.eligible, "{:?}", q.uplink);
}

#[test]
fn vlan_parent_in_another_namespace_is_unknown_not_guessed() {
    let v = nic(&host(), "vlan300");
    assert_eq!(v.vlan.as_ref().unwrap().parent, None);
}

#[test]
fn addressed_vlan_with_default_route_is_refused() {
    let v = nic(&host(), "eth0.100");
    assert_eq!(v.addresses, vec!["10.0.100.5/24"]);
    assert_eq!(v.default_route, vec![Family::Inet]);
    assert!(!v.uplink.eligible);
    assert!(v.uplink.reasons.iter().any(|r| r.contains("10.0.100.5/24")));
    assert!(v
        .uplink
        .reasons
        .iter()
        .any(|r| r.contains("IPv4 default route")));
}

#[test]
fn bond_mode_members_and_enslaved_ports() {
    let s = host();
    let b = nic(&s, "bond0");
    assert_eq!(b.kind, NicKind::Bond);
    let bond = b.bond.as_ref().unwrap();
    assert_eq!(bond.mode.as_deref(), Some("802.3ad"));
    assert_eq!(bond.members, vec!["eth1", "eth2"]);
    assert!(b.uplink.eligible, "{:?}", b.uplink);
    for port in ["eth1", "eth2"] {
        let p = nic(&s, port);
        assert_eq!(p.kind, NicKind::Physical);
        assert_eq!(p.controller.as_deref(), Some("bond0"));
        assert!(!p.uplink.eligible);
        assert!(
            p.uplink.reasons[0].contains("enslaved to bond0"),
            "{:?}",
            p.uplink
        );
    }
}

#[test]
fn bridge_ports_and_plain_physical() {
    let s = host();
    let br = nic(&s, "br0");
    assert_eq!(br.bridge.as_ref().unwrap().ports, vec!["eth3"]);
    assert_eq!(nic(&s, "eth3").controller.as_deref(), Some("br0"));
    let e = nic(&s, "eth0");
    assert_eq!(e.kind, NicKind::Physical);
    assert_eq!(e.mtu, Some(9000));
    assert_eq!(e.mac.as_deref(), Some("52:54:00:00:00:02"));
    assert!(e.uplink.eligible);
}

#[test]
fn non_main_table_and_non_default_routes_are_ignored() {
    let mut r = RouteMessage::default();
    r.header.address_family = AddressFamily::Inet;
    r.header.table = 100;
    r.header.kind = RouteType::Unicast;
    r.attributes = vec![RouteAttribute::Oif(2)];
    assert!(parse_default_route(&r).is_empty());
    r.header.table = 254;
    r.header.destination_prefix_length = 24;
    assert!(parse_default_route(&r).is_empty());
}
