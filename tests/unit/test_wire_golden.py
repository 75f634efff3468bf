"""Real OPEN and UPDATE bytes from BIRD 2.0.12, FRR bgpd and GoBGP 3.10 (see golden/README.md).

Each vector is decoded and checked field by field, then re-encoded: the bytes we would send
must decode to the same value. Only the .hex files are read; no daemon runs here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path

import pytest

from bgpmux.wire import (
    ADD_PATH_RECEIVE,
    ADD_PATH_SEND,
    IPV4_UNICAST,
    IPV6_UNICAST,
    CodecOptions,
    Family,
    Framer,
    GracefulRestart,
    Message,
    Open,
    Update,
    decode_body,
    encode_message,
    prefix_to_str,
)
from bgpmux.wire.constants import CapabilityCode, Origin, SegmentType

GOLDEN = Path(__file__).parent / "golden"
OPTIONS = CodecOptions(asn4=True)  # every daemon here offered the 4-octet AS capability
SEQ, SET = SegmentType.AS_SEQUENCE, SegmentType.AS_SET


def community(high: int, low: int) -> int:
    return (high << 16) | low


def load(name: str) -> Message:
    data = bytes.fromhex((GOLDEN / f"{name}.hex").read_text())
    frames = Framer().feed(data)
    assert len(frames) == 1, "one whole message per file"
    return decode_body(*frames[0], OPTIONS)


def load_open(name: str) -> Open:
    msg = load(name)
    assert isinstance(msg, Open)
    return msg


def load_update(name: str) -> Update:
    msg = load(name)
    assert isinstance(msg, Update)
    assert msg.treat_as_withdraw is None and msg.notes == ()
    return msg


def announced(update: Update) -> tuple[Family, str, list[str]]:
    """(family, next hop as text, prefixes as text) of an UPDATE's one announcement."""
    [(family, _attrs, next_hop, prefixes)] = list(update.announcements())
    text = str(ipaddress.ip_address(next_hop[:16] if len(next_hop) == 32 else next_hop))
    return family, text, [prefix_to_str(family, p) for p in prefixes]


ALL = sorted(path.stem for path in GOLDEN.glob("*.hex"))


def test_the_vectors_are_there() -> None:
    daemons = {name.split("_")[0] for name in ALL}
    assert daemons == {"bird", "frr", "gobgp"}
    assert len(ALL) >= 12


@pytest.mark.parametrize("name", ALL)
def test_reencoding_decodes_the_same(name: str) -> None:
    msg = load(name)
    data = encode_message(msg, OPTIONS)
    [(kind, body)] = Framer().feed(data)
    assert decode_body(kind, body, OPTIONS) == msg


@pytest.mark.parametrize(
    "name", ["bird_eor_ipv4", "bird_eor_ipv6", "bird_update_ipv4_10.244.1.0_26"]
)
def test_bird_ipv4_and_end_of_rib_reencode_byte_for_byte(name: str) -> None:
    """BIRD writes attributes in type order, as we do, so these come back exactly. (Its IPv6
    UPDATE does not: BIRD puts MP_REACH first, always with an extended length.)"""
    original = bytes.fromhex((GOLDEN / f"{name}.hex").read_text())
    assert encode_message(load(name), OPTIONS) == original


# ------------------------------------------------------------------------------------ BIRD


def test_bird_open() -> None:
    msg = load_open("bird_open")
    assert (msg.asn, msg.hold_time, msg.router_id) == (64512, 240, "127.0.0.2")
    caps = msg.capabilities
    assert caps.multiprotocol == (IPV4_UNICAST, IPV6_UNICAST)
    assert caps.four_octet_as == 64512
    assert caps.route_refresh and caps.enhanced_route_refresh
    assert not caps.extended_message
    # `graceful restart on`: 120 s, both families, no forwarding state kept (a fresh start).
    assert caps.graceful_restart == GracefulRestart(
        restart_time=120, families=((IPV4_UNICAST, False), (IPV6_UNICAST, False))
    )
    # `add paths on`, as Calico configures it: send and receive, both families.
    both = ADD_PATH_SEND | ADD_PATH_RECEIVE
    assert caps.add_path == ((IPV4_UNICAST, both), (IPV6_UNICAST, both))
    # Long-lived graceful restart, offered empty (no LLGR families).
    assert caps.unknown == ((CapabilityCode.LONG_LIVED_GRACEFUL_RESTART, b""),)


def test_bird_update_ipv4() -> None:
    msg = load_update("bird_update_ipv4_10.244.1.0_26")
    assert announced(msg) == (IPV4_UNICAST, "127.0.0.2", ["10.244.1.0/26"])
    attrs = msg.attributes
    assert attrs is not None
    assert attrs.origin == Origin.IGP
    assert attrs.as_path == ()  # iBGP, locally originated
    assert attrs.next_hop == bytes((127, 0, 0, 2))  # its `local` address
    assert attrs.local_pref == 100 and attrs.med is None
    assert attrs.communities == (community(64512, 100),)
    assert attrs.large_communities == ((64512, 1, 2),)
    assert attrs.other == () and attrs.aggregator is None and not attrs.atomic_aggregate


def test_bird_update_ipv6() -> None:
    msg = load_update("bird_update_ipv6_2001-db8-244-1--_64")
    # An IPv6 channel on an IPv4 session: the next hop is the channel's `next hop address`,
    # 16 octets, global only. Without that option BIRD logs "Missing next hop address" and
    # sends a withdrawal instead (see golden/README.md).
    assert announced(msg) == (IPV6_UNICAST, "2001:db8:244::2", ["2001:db8:244:1::/64"])
    assert msg.mp_reach is not None and len(msg.mp_reach.next_hop) == 16
    attrs = msg.attributes
    assert attrs is not None
    assert attrs.next_hop is None  # no IPv4 NEXT_HOP attribute with MP_REACH only
    assert attrs.as_path == () and attrs.local_pref == 100
    assert attrs.communities == (community(64512, 100),)
    assert attrs.large_communities == ((64512, 1, 2),)
    # The same attribute set as the IPv4 route, less the IPv4 NEXT_HOP.
    v4 = load_update("bird_update_ipv4_10.244.1.0_26").attributes
    assert v4 is not None and attrs == replace(v4, next_hop=None)


def test_bird_end_of_rib() -> None:
    # Sent for both families although our OPEN offered no graceful restart.
    assert load_update("bird_eor_ipv4").end_of_rib() == IPV4_UNICAST
    assert load_update("bird_eor_ipv6").end_of_rib() == IPV6_UNICAST


# ------------------------------------------------------------------------------------ FRR


def test_frr_open() -> None:
    msg = load_open("frr_open")
    assert (msg.asn, msg.hold_time, msg.router_id) == (64514, 180, "127.0.0.3")
    caps = msg.capabilities
    assert caps.multiprotocol == (IPV4_UNICAST, IPV6_UNICAST)
    assert caps.four_octet_as == 64514
    assert caps.route_refresh and caps.enhanced_route_refresh and caps.extended_message
    # Graceful-restart helper by default: restart and notification bits, no families.
    assert caps.graceful_restart == GracefulRestart(120, restarting=True, notification=True)
    assert caps.add_path == ((IPV4_UNICAST, ADD_PATH_RECEIVE), (IPV6_UNICAST, ADD_PATH_RECEIVE))
    unknown = dict(caps.unknown)
    assert unknown[CapabilityCode.FQDN] == b"\x0agolden-frr\x00"  # hostname, no domain
    assert CapabilityCode.LONG_LIVED_GRACEFUL_RESTART in unknown
    # FRR sends each capability in its own optional parameter; they all arrive.
    raw = bytes.fromhex((GOLDEN / "frr_open.hex").read_text())
    assert raw[29:31] == b"\x02\x06"


def test_frr_update_ipv4() -> None:
    msg = load_update("frr_update_ipv4_198.51.100.10_32")
    assert announced(msg) == (IPV4_UNICAST, "127.0.0.3", ["198.51.100.10/32"])
    attrs = msg.attributes
    assert attrs is not None
    assert attrs.origin == Origin.IGP
    assert attrs.as_path == ((SEQ, (64514,)),)  # eBGP: its own AS
    assert attrs.med == 0 and attrs.local_pref is None
    assert attrs.communities == (community(64514, 100), community(64514, 200))
    assert attrs.large_communities == ((64514, 1, 2),)


def test_frr_update_ipv6() -> None:
    msg = load_update("frr_update_ipv6_2001-db8-100--10_128")
    # No zebra, no IPv6 address to use: FRR sends the IPv4-mapped session address.
    assert announced(msg) == (IPV6_UNICAST, "::ffff:7f00:3", ["2001:db8:100::10/128"])
    assert msg.mp_reach is not None
    assert ipaddress.IPv6Address(msg.mp_reach.next_hop).ipv4_mapped == ipaddress.IPv4Address(
        "127.0.0.3"
    )
    attrs = msg.attributes
    assert attrs is not None
    assert attrs.as_path == ((SEQ, (64514,)),) and attrs.med == 0
    assert attrs.communities == (community(64514, 100), community(64514, 200))
    assert attrs.large_communities == ((64514, 1, 2),)


# ------------------------------------------------------------------------------------ GoBGP


def test_gobgp_open() -> None:
    msg = load_open("gobgp_open")
    assert (msg.asn, msg.hold_time, msg.router_id) == (65000, 90, "127.0.0.4")
    caps = msg.capabilities
    assert caps.multiprotocol == (IPV4_UNICAST, IPV6_UNICAST)
    assert caps.four_octet_as == 65000 and caps.route_refresh
    assert not caps.enhanced_route_refresh and not caps.extended_message
    assert caps.graceful_restart is None and caps.add_path == ()
    unknown = dict(caps.unknown)
    assert CapabilityCode.FQDN in unknown  # the capturing machine's hostname
    # RFC 8950 extended next hop: IPv4 unicast NLRI with IPv6 next hops.
    assert unknown[CapabilityCode.EXTENDED_NEXT_HOP] == bytes.fromhex("000100010002")


def test_gobgp_default_route() -> None:
    msg = load_update("gobgp_update_ipv4_0.0.0.0_0")
    assert announced(msg) == (IPV4_UNICAST, "127.0.0.4", ["0.0.0.0/0"])
    attrs = msg.attributes
    assert attrs is not None
    assert attrs.origin == Origin.INCOMPLETE  # routes added over the API
    assert attrs.as_path == ((SEQ, (65000,)),)


def test_gobgp_update_with_as_set_and_four_octet_as() -> None:
    msg = load_update("gobgp_update_ipv4_203.0.113.0_24")
    assert announced(msg) == (IPV4_UNICAST, "127.0.0.4", ["203.0.113.0/24"])
    attrs = msg.attributes
    assert attrs is not None
    assert attrs.as_path == ((SEQ, (65000, 4_200_000_001)), (SET, (65002, 65003)))
    assert attrs.as_path_length() == 3
    assert attrs.med == 50
    assert attrs.communities == (community(65000, 100),)
    assert attrs.large_communities == ((65000, 1, 2),)


def test_gobgp_update_ipv6() -> None:
    msg = load_update("gobgp_update_ipv6_2001-db8-203--_48")
    # The next hop given to `gobgp global rib add` is kept: the session has no IPv6 address.
    assert announced(msg) == (IPV6_UNICAST, "2001:db8:ff::4", ["2001:db8:203::/48"])
    attrs = msg.attributes
    assert attrs is not None
    assert attrs.as_path == ((SEQ, (65000,)),)
    assert attrs.communities == (community(65000, 100),)
    assert attrs.large_communities == ((65000, 1, 2),)


def test_gobgp_attribute_order_does_not_matter() -> None:
    """GoBGP writes NEXT_HOP last, after LARGE_COMMUNITIES; we write type order."""
    raw = bytes.fromhex((GOLDEN / "gobgp_update_ipv4_203.0.113.0_24.hex").read_text())
    msg = load("gobgp_update_ipv4_203.0.113.0_24")
    ours = encode_message(msg, OPTIONS)
    assert ours != raw and sorted(ours) == sorted(raw)
