"""One config for every rack: the default route's next hop (pure choice over parsed /proc
text), node_cidrs selection, check-config's account of it, and the validation errors."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import pytest
import yaml

from bgpmux.cli import main
from bgpmux.config import ConfigError, load_config, parse_config
from bgpmux.config_types import Gateway, IPAddress
from bgpmux.gateway import (
    DefaultRoute,
    GatewayError,
    choose_gateway,
    default_gateway,
    parse_ipv4_routes,
    parse_ipv6_routes,
)
from bgpmux.placement import place

EXAMPLES = Path(__file__).parents[2] / "examples"

PROC_ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t00000000\t0101000A\t0003\t0\t0\t200\t00000000\t0\t0\t0
eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth2\t00000000\t0102000A\t0002\t0\t0\t50\t00000000\t0\t0\t0
"""

Z = "0" * 32
PROC_IPV6_ROUTE = f"""\
20010db8000000000000000000000000 40 {Z} 00 {Z} 00000100 00000001 00000000 00000001 eth0
{Z} 00 {Z} 00 20010db8000000000000000000000001 00000400 00000002 00000000 00000003 eth0
{Z} 00 {Z} 00 fe800000000000000000000000000001 00000200 00000002 00000000 00000003 eth1
{Z} 00 {Z} 00 {Z} ffffffff 00000001 00000000 00200200 lo
"""


# ------------------------------------------------------------------ the default route


def test_proc_route_parsing_keeps_usable_default_routes() -> None:
    routes = parse_ipv4_routes(PROC_ROUTE)
    # the route that is not up (flags 0002) and the connected /24 are left out
    assert routes == [
        DefaultRoute(IPv4Address("10.0.1.1"), 200, "eth1"),
        DefaultRoute(IPv4Address("10.0.0.1"), 100, "eth0"),
    ]
    assert choose_gateway(routes, 4) == IPv4Address("10.0.0.1")  # the lowest metric


def test_proc_ipv6_route_parsing_skips_the_null_entry() -> None:
    routes = parse_ipv6_routes(PROC_IPV6_ROUTE)
    assert routes == [
        DefaultRoute(IPv6Address("2001:db8::1"), 0x400, "eth0"),
        DefaultRoute(IPv6Address("fe80::1"), 0x200, "eth1"),
    ]


def test_link_local_ipv6_gateway_is_refused_naming_its_interface() -> None:
    with pytest.raises(GatewayError, match=r"fe80::1 \(dev eth1\) is link-local"):
        choose_gateway(parse_ipv6_routes(PROC_IPV6_ROUTE), 6)
    # without the link-local route, the global next hop is the gateway
    routes = [r for r in parse_ipv6_routes(PROC_IPV6_ROUTE) if r.device == "eth0"]
    assert choose_gateway(routes, 6) == IPv6Address("2001:db8::1")


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ([], "this node has no IPv4 default route"),
        ([DefaultRoute(None, 0, "ppp0")], r"default route \(dev ppp0\) has no next hop"),
        (
            [
                DefaultRoute(IPv4Address("10.0.0.1"), 10, "eth0"),
                DefaultRoute(IPv4Address("10.0.1.1"), 10, "eth1"),
            ],
            r"several IPv4 default routes with metric 10 \(via 10.0.0.1, 10.0.1.1\)",
        ),
    ],
)
def test_no_single_gateway_is_a_clear_error(routes: list[DefaultRoute], message: str) -> None:
    with pytest.raises(GatewayError, match=message):
        choose_gateway(routes, 4)


def test_same_gateway_twice_is_not_ambiguous() -> None:
    hop = IPv4Address("10.0.0.1")
    routes = [DefaultRoute(hop, 0, "eth0"), DefaultRoute(hop, 0, "eth0")]
    assert choose_gateway(routes, 4) == hop


def test_default_gateway_reads_the_files(tmp_path: Path) -> None:
    (tmp_path / "route").write_text(PROC_ROUTE)
    assert default_gateway(4, tmp_path) == IPv4Address("10.0.0.1")
    with pytest.raises(GatewayError, match=r"cannot read .*ipv6_route"):
        default_gateway(6, tmp_path)


# ------------------------------------------------------------------ placement

RACKS = """\
node: {asn: 64512, router_id: 10.0.1.5, address: "${NODE_IP}", address_v6: "${NODE_IP6:-}"}
engine: native
upstreams:
  - {name: tor-r1, address: default-gateway, asn: 65001, node_cidrs: [10.0.1.0/24]}
  - {name: tor-r2, address: default-gateway, asn: 65002, node_cidrs: [10.0.2.0/24]}
  - {name: tor-r1-v6, address: default-gateway6, asn: 65001, node_cidrs: ["2001:db8:1::/64"]}
  - {name: spine, address: 10.255.0.1, asn: 65100}
clients:
  - {name: calico, listen: "127.0.0.1:1790", asn: 64512}
"""

GATEWAYS: dict[int, IPAddress] = {4: ip_address("10.0.1.1"), 6: ip_address("2001:db8:1::1")}


def lookup(version: int) -> IPAddress:
    return GATEWAYS[version]


def no_route(version: int) -> IPAddress:
    raise GatewayError(f"no IPv{version} default route")


def test_upstreams_apply_by_node_cidrs_and_resolve_the_gateway() -> None:
    config = parse_config(RACKS, env={"NODE_IP": "10.0.1.5", "NODE_IP6": "2001:db8:1::5"})
    placement = place(config, lookup)
    assert [(u.name, str(u.address)) for u in placement.config.upstreams] == [
        ("tor-r1", "10.0.1.1"),
        ("tor-r1-v6", "2001:db8:1::1"),
        ("spine", "10.255.0.1"),
    ]
    assert [(p.name, p.applies, p.why) for p in placement.upstreams] == [
        ("tor-r1", True, "node.address 10.0.1.5 is in 10.0.1.0/24; default-gateway is 10.0.1.1"),
        (
            "tor-r2",
            False,
            "node.address 10.0.1.5 and node.address_v6 2001:db8:1::5 in none of node_cidrs "
            "10.0.2.0/24",
        ),
        (
            "tor-r1-v6",
            True,
            "node.address_v6 2001:db8:1::5 is in 2001:db8:1::/64; default-gateway6 is "
            "2001:db8:1::1",
        ),
        ("spine", True, "no node_cidrs: every node"),
    ]
    assert [p.name for p in placement.skipped] == ["tor-r2"]


def test_an_upstream_that_does_not_apply_is_not_resolved() -> None:
    # rack 2 has no IPv6: tor-r1-v6 is skipped there, its gateway never looked up
    config = parse_config(RACKS, env={"NODE_IP": "10.0.2.7"})
    looked_up: list[int] = []

    def only_v4(version: int) -> IPAddress:
        looked_up.append(version)
        return ip_address("10.0.2.1")

    placement = place(config, only_v4)
    assert [u.name for u in placement.config.upstreams] == ["tor-r2", "spine"]
    assert looked_up == [4]


def test_no_upstream_applying_is_a_start_error() -> None:
    text = RACKS.replace("  - {name: spine, address: 10.255.0.1, asn: 65100}\n", "")
    config = parse_config(text, env={"NODE_IP": "10.0.9.9"})
    with pytest.raises(ConfigError) as info:
        place(config, lookup)
    ((where, message),) = info.value.errors
    assert where == "upstreams"
    assert message.startswith("none applies on this node (tor-r1: node.address 10.0.9.9 in none")


def test_an_unresolvable_gateway_names_the_upstream() -> None:
    config = parse_config(RACKS, env={"NODE_IP": "10.0.1.5"})
    with pytest.raises(ConfigError) as info:
        place(config, no_route)
    assert info.value.errors == [("upstreams[0].address", "no IPv4 default route")]


def test_two_upstreams_at_one_address_are_refused() -> None:
    text = RACKS.replace("address: 10.255.0.1", "address: 10.0.1.1")
    config = parse_config(text, env={"NODE_IP": "10.0.1.5"})
    with pytest.raises(ConfigError) as info:
        place(config, lookup)
    assert info.value.errors == [
        ("upstreams[3].address", "10.0.1.1 is also the address of upstreams[0]")
    ]


def test_an_ipv6_upstream_that_applies_needs_node_address_v6() -> None:
    text = RACKS.replace('node_cidrs: ["2001:db8:1::/64"]', "node_cidrs: [10.0.1.0/24]")
    config = parse_config(text, env={"NODE_IP": "10.0.1.5"})  # no NODE_IP6
    with pytest.raises(ConfigError) as info:
        place(config, lookup)
    ((where, message),) = info.value.errors
    assert where == "upstreams[2].address"
    assert message.startswith("an IPv6 upstream needs node.address_v6")


# ------------------------------------------------------------------ validation


def doc(**upstream: Any) -> str:
    entry = {"name": "tor", "address": "10.0.0.1", "asn": 65000, **upstream}
    return yaml.safe_dump(
        {
            "node": {"asn": 64512, "router_id": "10.0.0.2", "address": "10.0.0.2"},
            "upstreams": [entry],
            "clients": [{"name": "calico", "listen": "127.0.0.1:1790", "asn": 64512}],
        }
    )


@pytest.mark.parametrize(
    ("upstream", "where", "message"),
    [
        ({"address": "default-router"}, "upstreams[0].address", "not an IP address, default-"),
        ({"node_cidrs": []}, "upstreams[0].node_cidrs", "give at least one CIDR"),
        ({"node_cidrs": ["10.0.0.1"]}, "upstreams[0].node_cidrs[0]", "is not a CIDR"),
        ({"node_cidrs": ["10.0.0.1/24"]}, "upstreams[0].node_cidrs[0]", "has host bits set"),
        ({"node_cidrs": "10.0.0.0/24"}, "upstreams[0].node_cidrs", "valid tuple"),
        (
            {"address": "default-gateway6"},
            "upstreams[0].address",
            "an IPv6 upstream needs node.address_v6",
        ),
    ],
)
def test_bad_rack_fields_are_named(upstream: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(doc(**upstream), env={})
    errors = dict(info.value.errors)
    assert where in errors, errors
    assert message in errors[where]


def test_gateway_words_parse() -> None:
    config = parse_config(doc(address="default-gateway", node_cidrs=["10.0.0.0/24"]), env={})
    (upstream,) = config.upstreams
    assert upstream.address is Gateway.IPV4 and upstream.address.version == 4
    with pytest.raises(ValueError, match="not resolved"):
        _ = upstream.ip


def test_ipv6_only_node() -> None:
    text = """\
node: {asn: 64512, router_id: 10.9.9.9, address_v6: "2001:db8:1::5"}
upstreams: [{name: tor, address: default-gateway6, asn: 65001}]
clients: [{name: calico, listen: "[::1]:1790", asn: 64512}]
"""
    config = parse_config(text, env={})
    assert config.node.address is None
    assert str(config.metrics_listen) == "[2001:db8:1::5]:9479"
    with pytest.raises(ConfigError) as info:
        parse_config(text.replace("default-gateway6", "10.0.0.1"), env={})
    assert info.value.errors == [
        (
            "upstreams[0].address",
            "an IPv4 upstream needs node.address (the session's source address)",
        )
    ]


# ------------------------------------------------------------------ check-config


def test_check_config_says_which_upstreams_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bgpmux.cli.default_gateway", lookup)
    monkeypatch.setenv("NODE_IP", "10.0.2.7")
    monkeypatch.delenv("NODE_IP6", raising=False)
    path = tmp_path / "racks.yaml"
    path.write_text(RACKS)
    assert main(["check-config", "-c", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [
        "OK: 4 upstreams (2 on this node), 1 client, engine native",
        "  upstream tor-r1: does not apply (node.address 10.0.2.7 in none of node_cidrs "
        "10.0.1.0/24)",
        "  upstream tor-r2: applies, at 10.0.1.1 (node.address 10.0.2.7 is in 10.0.2.0/24; "
        "default-gateway is 10.0.1.1)",
        "  upstream tor-r1-v6: does not apply (node.address 10.0.2.7 in none of node_cidrs "
        "2001:db8:1::/64)",
        "  upstream spine: applies, at 10.255.0.1 (no node_cidrs: every node)",
    ]


def test_check_config_fails_without_a_default_route(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bgpmux.cli.default_gateway", no_route)
    monkeypatch.setenv("NODE_IP", "10.0.1.5")
    path = tmp_path / "racks.yaml"
    path.write_text(RACKS)
    assert main(["check-config", "-c", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{path}: upstreams[0].address: no IPv4 default route\n"


def test_multi_rack_example_places_on_each_rack() -> None:
    for node_ip, tor in (("10.0.1.5", "tor-rack1"), ("10.0.2.7", "tor-rack2")):
        config = load_config(EXAMPLES / "multi-rack.yaml", env={"NODE_IP": node_ip})
        placement = place(config, lambda version: ip_address("10.0.9.1"))
        assert [u.name for u in placement.config.upstreams] == [tor]


def test_deploy_configmap_dials_the_default_gateway_unless_tor_ip_is_set() -> None:
    text = (EXAMPLES.parent / "deploy" / "base" / "bgpmux.yaml").read_text()
    for env, address in (({}, "10.0.1.1"), ({"TOR_IP": "10.0.1.254"}, "10.0.1.254")):
        config = parse_config(text, env={"NODE_IP": "10.0.1.5", "NODE_IPS": "10.0.1.5", **env})
        (tor,) = place(config, lookup).config.upstreams
        assert str(tor.address) == address
