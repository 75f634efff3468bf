"""Session identity on reload: which changes reset an upstream's session (``reload.plan``),
and the core resetting it through the engine (fake engine, no sockets)."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from bgpmux.config import Config, parse_config
from bgpmux.core import Core
from bgpmux.core.events import Reconfigure, UpstreamEstablished, UpstreamRoutes
from bgpmux.core.reload import plan
from bgpmux.engines.fake import FakeEngine
from bgpmux.placement import place
from bgpmux.wire import IPV4_UNICAST
from bgpmux.wire.prefix import prefix_from_str

from .core_helpers import CONFIG, attrs

TWO_TORS = CONFIG.replace(
    "upstreams: [{name: tor, address: 10.0.0.1, asn: 65000}]",
    "upstreams: [{name: tor, address: default-gateway, asn: 65000}, "
    "{name: tor-b, address: 10.0.0.9, asn: 65000}]",
)


def placed(text: str, gateway: str = "10.0.0.1") -> Config:
    return place(parse_config(text, env={}), lambda version: ip_address(gateway)).config


@pytest.mark.parametrize(
    ("old", "new", "fields"),
    [
        ("asn: 65000}]", "asn: 65001}]", ["asn"]),
        ("asn: 65000}]", "asn: 65000, port: 1179}]", ["port"]),
        ("asn: 65000}]", "asn: 65000, hold_time: 30}]", ["hold_time"]),
        ("asn: 65000}]", "asn: 65000, graceful_restart: 0}]", ["graceful_restart"]),
        ("address: 10.0.0.9, asn: 65000", "address: 10.0.0.8, asn: 65001", ["address", "asn"]),
    ],
)
def test_identity_fields_reset_the_session(old: str, new: str, fields: list[str]) -> None:
    result = plan(placed(TWO_TORS), placed(TWO_TORS.replace(old, new)))
    assert [u.name for u in result.resets] == ["tor-b"]
    assert result.reset_fields == {"tor-b": fields}
    assert result.pending == []


def test_a_moved_default_gateway_is_an_identity_change() -> None:
    result = plan(placed(TWO_TORS, "10.0.0.1"), placed(TWO_TORS, "10.0.0.5"))
    assert [(u.name, str(u.address)) for u in result.resets] == [("tor", "10.0.0.5")]
    assert result.reset_fields == {"tor": ["address"]}
    assert plan(placed(TWO_TORS), placed(TWO_TORS)).resets == []  # the same gateway: nothing


def test_selection_and_policy_fields_are_no_part_of_the_identity() -> None:
    new = TWO_TORS.replace(
        "address: 10.0.0.9, asn: 65000}", "address: 10.0.0.9, asn: 65000, node_cidrs: [10.0.0.0/8]}"
    ).replace("address: default-gateway, asn: 65000}", "address: 10.0.0.1, asn: 65000}")
    result = plan(placed(TWO_TORS), placed(new))  # the gateway was 10.0.0.1: same address
    assert result.resets == [] and result.pending == []
    # allow_node_as is import policy, not identity: it needs a restart, it resets nothing
    result = plan(
        placed(TWO_TORS), placed(TWO_TORS.replace("65000}]", "65000, allow_node_as: true}]"))
    )
    assert result.resets == []
    assert result.pending == ["upstreams[1] (tor-b): allow_node_as"]


def test_upstreams_added_or_removed_reset_nothing() -> None:
    result = plan(placed(TWO_TORS), placed(CONFIG))
    assert result.resets == [] and result.pending == []
    assert result.upstreams_removed == ["tor-b"]  # tor: the same address (the gateway's)


def test_node_changes_need_a_restart() -> None:
    result = plan(
        placed(TWO_TORS), placed(TWO_TORS.replace("asn: 64512, router_id", "asn: 64513, router_id"))
    )
    assert result.pending == ["node"]


def test_core_resets_an_upstream_whose_gateway_moved() -> None:
    engine = FakeEngine()
    core = Core(placed(TWO_TORS, "10.0.0.1"), engine, now=0.0)
    for name in ("tor", "tor-b"):
        core.handle(UpstreamEstablished(name), 0.0)
    tor_attrs = attrs(as_path=(65000,), next_hop=ip_address("10.0.0.1").packed)
    prefix = prefix_from_str("203.0.113.0/24")[1]
    core.handle(UpstreamRoutes("tor", IPV4_UNICAST, tor_attrs, tor_attrs.next_hop, [prefix]), 1.0)
    core.flush(1.0)
    assert core.upstreams["tor"].channel.rib.count() == 1

    pending = core.handle(Reconfigure(placed(TWO_TORS, "10.0.0.5")), 2.0)
    core.flush(2.0)
    assert pending == []
    assert [(u.name, str(u.address)) for u in engine.resets] == [("tor", "10.0.0.5")]
    tor, tor_b = core.upstreams["tor"], core.upstreams["tor-b"]
    assert not tor.up and tor.flaps == 1 and tor.channel.rib.count() == 0  # a new session
    assert tor_b.up and tor_b.flaps == 0  # untouched
    assert str(core.config.upstreams[0].address) == "10.0.0.5"  # what runs now
    # the same configuration again changes nothing more
    assert core.handle(Reconfigure(placed(TWO_TORS, "10.0.0.5")), 3.0) == []
    assert len(engine.resets) == 1


def test_an_engine_that_cannot_reset_reports_a_restart() -> None:
    class NoReset(FakeEngine):
        def reset_upstream(self, upstream: object) -> None:
            raise NotImplementedError("the test engine cannot reset one upstream session")

    core = Core(placed(TWO_TORS, "10.0.0.1"), NoReset(), now=0.0)
    core.handle(UpstreamEstablished("tor"), 0.0)
    pending = core.handle(Reconfigure(placed(TWO_TORS, "10.0.0.5")), 1.0)
    assert pending == [
        "upstreams[0] (tor): address (the test engine cannot reset one upstream session)"
    ]
    assert core.upstreams["tor"].up  # left alone
    assert str(core.config.upstreams[0].address) == "10.0.0.1"
