"""Channels on their own: import policy, limits, refusals and stale state, as values."""

from __future__ import annotations

import ipaddress

from bgpmux.config import parse_config
from bgpmux.policy.channels import ClientChannel, CutOffReason, UpstreamChannel
from bgpmux.policy.transforms import RejectReason
from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST, PathAttributes, Update
from bgpmux.wire.messages import MpReach
from bgpmux.wire.prefix import prefix_from_str

from .core_helpers import CONFIG, announce, withdraw

NODE_AS = 64512


def channel(
    name: str = "metallb", families=(IPV4_UNICAST, IPV6_UNICAST), **changes: object
) -> ClientChannel:
    config = parse_config(CONFIG, env={})
    [client] = [c for c in config.clients if c.name == name]
    client = client.model_copy(update=changes)
    return ClientChannel(client, order=1, node_asn=NODE_AS, exportable=families)


def p(text: str) -> bytes:
    return prefix_from_str(text)[1]


def test_accepted_and_refused_are_told_apart_and_refusals_reported_once() -> None:
    ch = channel()
    out = ch.receive(announce("198.51.100.1/32", "203.0.113.1/32"))
    assert [(f, prefixes) for f, prefixes, _path in out.changes if prefixes] == [
        (IPV4_UNICAST, [p("198.51.100.1/32")])
    ]
    assert out.rejected == [(IPV4_UNICAST, p("203.0.113.1/32"), RejectReason.NOT_ACCEPTED)]
    again = ch.receive(announce("203.0.113.1/32"))
    assert again.rejected == []  # already refused for that reason
    ch.receive(withdraw("203.0.113.1/32"))
    assert ch.rejected == {}


def test_families_without_a_node_next_hop_are_refused() -> None:
    ch = channel(families=(IPV4_UNICAST,))
    v6 = Update(
        attributes=PathAttributes(),
        mp_reach=MpReach(
            IPV6_UNICAST, ipaddress.ip_address("2001:db8::1").packed, (p("2001:db8:100::1/128"),)
        ),
    )
    out = ch.receive(v6)
    assert out.rejected == [(IPV6_UNICAST, p("2001:db8:100::1/128"), RejectReason.NO_IPV6_NEXT_HOP)]
    assert ch.rib.count() == 0


def test_the_cut_off_names_the_family_that_went_over() -> None:
    ch = channel()  # max_prefixes 5
    ch.receive(announce("198.51.100.1/32", "198.51.100.2/32"))
    v6 = [f"2001:db8:100::{i}/128" for i in range(1, 5)]
    out = ch.receive(announce(*v6))
    assert out.cut_off is not None
    assert out.cut_off.reason is CutOffReason.MAX_PREFIXES
    assert (out.cut_off.family, out.cut_off.limit) == (IPV6_UNICAST, 5)
    assert ch.cutoffs == 1


def test_block_keeps_the_session_and_drops_only_new_prefixes_over_the_limit() -> None:
    ch = channel(max_prefixes_action="block")  # max_prefixes 5
    first = [f"198.51.100.{i}/32" for i in range(1, 5)]
    ch.receive(announce(*first))
    out = ch.receive(announce("198.51.100.1/32", "198.51.100.9/32", "198.51.100.10/32"))
    assert out.cut_off is None
    assert out.limit_reached is not None and out.limit_reached.action == "block"
    assert ch.rib.count() == 5 and ch.blocked == 1  # .1 was held: only .10 found no room
    assert ch.rib.get(IPV4_UNICAST, p("198.51.100.10/32")) is None
    again = ch.receive(announce("198.51.100.11/32"))
    assert again.limit_reached is None and ch.blocked == 2  # reported once per crossing
    ch.receive(withdraw("198.51.100.9/32"))  # back under: room for one
    assert not ch.at_limit
    out = ch.receive(announce("198.51.100.11/32", "203.0.113.1/32"))
    assert ch.rib.get(IPV4_UNICAST, p("198.51.100.11/32")) is not None
    assert out.limit_reached is not None  # the refused one found no room: a new crossing
    assert ch.limit_hits == 2 and ch.cutoffs == 0


def test_block_counts_refused_prefixes_against_the_limit_too() -> None:
    ch = channel(max_prefixes_action="block")
    ch.receive(announce(*[f"203.0.113.{i}/32" for i in range(1, 10)]))  # none accepted
    assert len(ch.rejected) == 5 and ch.blocked == 4  # memory stays bounded


def test_warn_keeps_everything_and_says_so_once() -> None:
    ch = channel(max_prefixes_action="warn")
    out = ch.receive(announce(*[f"198.51.100.{i}/32" for i in range(1, 8)]))
    assert out.cut_off is None and out.limit_reached is not None
    assert ch.rib.count() == 7
    assert ch.receive(announce("198.51.100.20/32")).limit_reached is None


def test_a_lower_limit_on_reload_acts_as_configured() -> None:
    ch = channel(max_prefixes_action="warn")
    ch.receive(announce(*[f"198.51.100.{i}/32" for i in range(1, 5)]))
    lower = ch.policy.model_copy(update={"max_prefixes": 2})
    out = ch.reconfigure(lower)
    assert out.cut_off is None and out.limit_reached is not None and ch.rib.count() == 4
    out = ch.reconfigure(lower.model_copy(update={"max_prefixes_action": "restart"}))
    assert out.cut_off is not None


def test_stale_routes_are_kept_then_swept_at_end_of_rib() -> None:
    ch = channel()
    ch.receive(announce("198.51.100.1/32", "198.51.100.2/32"))
    assert ch.keep_stale(None, deadline=130.0) == []
    assert ch.rib.stale_count() == 2 and ch.stale_deadline == 130.0
    ch.receive(announce("198.51.100.1/32"))  # sent again: live
    assert ch.end_of_rib(IPV4_UNICAST) == [(IPV4_UNICAST, p("198.51.100.2/32"))]
    assert ch.stale_deadline is None and ch.rib.count() == 1


def test_reconfigure_judges_every_route_again() -> None:
    ch = channel()
    ch.receive(announce("198.51.100.1/32", "203.0.113.1/32"))
    widened = CONFIG.replace(
        '"198.51.100.0/24 le 32", "2001:db8:100::/48 le 128"]',
        '"198.51.100.0/24 le 32", "203.0.113.0/24 le 32"]',
    )
    [new] = [c for c in parse_config(widened, env={}).clients if c.name == "metallb"]
    out = ch.reconfigure(new)
    assert ch.rejected == {} and ch.rib.count() == 2
    assert {pre for _f, prefixes, _p in out.changes for pre in prefixes} == {
        p("198.51.100.1/32"),
        p("203.0.113.1/32"),
    }


def test_upstream_loops_are_kept_out_and_reported_once() -> None:
    ch = UpstreamChannel("tor", 0, ebgp=True, allow_node_as=False, node_asn=NODE_AS)
    looped = PathAttributes(as_path=((2, (65000, NODE_AS)),))
    prefix = p("10.244.1.0/26")
    out = ch.receive(IPV4_UNICAST, looped, b"\x0a\x00\x00\x01", [prefix])
    [(_f, removed, path)] = out.changes
    assert (list(removed), path, out.looped) == ([], None, [prefix])
    assert ch.receive(IPV4_UNICAST, looped, b"\x0a\x00\x00\x01", [prefix]).looped == []
    fine = PathAttributes(as_path=((2, (65000,)),))
    out = ch.receive(IPV4_UNICAST, fine, b"\x0a\x00\x00\x01", [prefix])
    [(_f, prefixes, path)] = out.changes
    assert path is not None and list(prefixes) == [prefix] and not ch.looped
