"""``node.addresses``: the downward API's ``status.hostIPs`` (``NODE_IPS``, comma-separated)
fills ``node.address`` and ``node.address_v6`` by family."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
import yaml

from bgpmux.config import Config, ConfigError, parse_config
from bgpmux.node_addresses import parse_addresses

TEXT = """
node: {asn: 64512, router_id: "${NODE_IP}", addresses: "${NODE_IPS}"}
upstreams: [{name: tor, address: 10.0.0.1, asn: 65000}]
clients: [{name: calico, listen: 127.0.0.1:1790, asn: 64512}]
"""


def with_node(tor: str = "10.0.0.1", **node: Any) -> Config:
    doc = yaml.safe_load(TEXT)
    doc["node"] = {"asn": 64512, "router_id": "10.0.0.2", **node}
    doc["upstreams"][0]["address"] = tor
    return parse_config(yaml.safe_dump(doc), env={})


def errors(**node: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        with_node(**node)
    return dict(info.value.errors)


@pytest.mark.parametrize(
    ("node_ips", "v4", "v6"),
    [
        ("10.0.0.2", "10.0.0.2", None),  # single-stack
        ("10.0.0.2,2001:db8:ff::2", "10.0.0.2", "2001:db8:ff::2"),  # dual-stack, IPv4 first
        ("2001:db8:ff::2,10.0.0.2", "10.0.0.2", "2001:db8:ff::2"),  # IPv6 first
        (" 10.0.0.2 , 2001:db8:ff::2 ", "10.0.0.2", "2001:db8:ff::2"),
    ],
)
def test_node_ips_fill_each_family(node_ips: str, v4: str, v6: str | None) -> None:
    config = parse_config(TEXT, env={"NODE_IP": "10.0.0.2", "NODE_IPS": node_ips})
    assert config.node.address == IPv4Address(v4)
    assert config.node.address_v6 == (IPv6Address(v6) if v6 else None)


def test_metrics_listen_on_the_primary_address() -> None:
    """The kubelet probes the pod IP, under hostNetwork the node's primary address: the first
    of status.hostIPs, IPv6 on an IPv6-primary dual-stack node."""
    for node_ips, listen in (
        ("10.0.0.2,2001:db8:ff::2", "10.0.0.2:9479"),
        ("2001:db8:ff::2,10.0.0.2", "[2001:db8:ff::2]:9479"),
    ):
        config = parse_config(TEXT, env={"NODE_IP": "10.0.0.2", "NODE_IPS": node_ips})
        assert str(config.metrics_listen) == listen


def test_a_yaml_list_works_too() -> None:
    config = with_node(addresses=["2001:db8::2", "10.0.0.2"])
    assert (config.node.address, config.node.address_v6) == (
        IPv4Address("10.0.0.2"),
        IPv6Address("2001:db8::2"),
    )


def test_an_ipv6_only_node() -> None:
    config = with_node(tor="2001:db8::1", addresses="2001:db8::2", router_id="10.255.0.2")
    assert config.node.address is None
    assert config.node.address_v6 == IPv6Address("2001:db8::2")


def test_explicit_fields_agree_or_are_refused() -> None:
    same = with_node(address="10.0.0.2", addresses="10.0.0.2,2001:db8::2")
    assert same.node.address_v6 == IPv6Address("2001:db8::2")
    assert errors(address="10.0.0.9", addresses="10.0.0.2") == {
        "node.addresses": "10.0.0.2 differs from node.address 10.0.0.9: give one of them"
    }
    assert "node.addresses" in errors(address_v6="2001:db8::9", addresses="2001:db8::2")


@pytest.mark.parametrize(
    ("addresses", "message"),
    [
        ("10.0.0.2,10.0.0.3", "two IPv4 addresses (10.0.0.2, 10.0.0.3): give at most one of each"),
        ("2001:db8::2,2001:db8::3", "two IPv6 addresses"),
        ("10.0.0.2,nope", "'nope' is not an IP address"),
        ("fe80::1,10.0.0.2", "fe80::1 is link-local: give the node's global address"),
        (7, "expected addresses, comma-separated"),
    ],
)
def test_bad_addresses_are_named(addresses: object, message: str) -> None:
    found = errors(addresses=addresses)
    assert list(found) == ["node.addresses"]
    assert message in found["node.addresses"]


def test_empty_addresses_ask_for_node_ips() -> None:
    """NODE_IPS set empty: the one error names node.addresses and the variable, not a
    router_id or address that would follow from it."""
    assert errors(addresses="") == {"node.addresses": "empty (is NODE_IPS set?)"}
    doc = yaml.safe_load(TEXT)
    doc["node"] = {"asn": 64512, "addresses": "${NODE_IPS}"}
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(doc), env={"NODE_IPS": ""})
    assert dict(info.value.errors) == {"node.addresses": "empty (is NODE_IPS set?)"}
    # empty beside an explicit address is no error
    assert with_node(addresses="", address="10.0.0.3").node.address == IPv4Address("10.0.0.3")


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("0.0.0.0", "0.0.0.0 is the unspecified address"),
        ("::", ":: is the unspecified address"),
        ("224.0.0.5", "224.0.0.5 is a multicast address"),
        ("ff02::2", "ff02::2 is a multicast address"),
        ("255.255.255.255", "255.255.255.255 is the broadcast address"),
        ("::ffff:10.0.0.2", "is an IPv4-mapped IPv6 address: give 10.0.0.2 as the"),
    ],
)
def test_addresses_no_node_can_have_are_refused(address: str, message: str) -> None:
    found = errors(addresses=address)
    assert list(found) == ["node.addresses"] and message in found["node.addresses"]
    field = "address" if ":" not in address else "address_v6"
    found = errors(**{field: address})
    assert list(found) == [f"node.{field}"] and message in found[f"node.{field}"]


def test_router_id_zero_is_refused() -> None:
    """RFC 6286 §2.1: the BGP Identifier is a non-zero four-octet integer."""
    found = errors(router_id="0.0.0.0", address="10.0.0.2")
    assert list(found) == ["node.router_id"]
    assert "must be non-zero (RFC 6286 §2.1)" in found["node.router_id"]
    doc = yaml.safe_load(TEXT)
    doc["clients"][0]["router_id"] = "0.0.0.0"
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(doc), env={"NODE_IP": "10.0.0.2", "NODE_IPS": "10.0.0.2"})
    assert list(dict(info.value.errors)) == ["clients[0].router_id"]


def test_parse_addresses_keeps_their_order() -> None:
    assert parse_addresses("2001:db8::2,10.0.0.2") == (
        IPv6Address("2001:db8::2"),
        IPv4Address("10.0.0.2"),
    )
    assert parse_addresses([]) == ()


def test_router_id_defaults_to_the_ipv4_address() -> None:
    ipv6_primary = parse_config(
        TEXT.replace('router_id: "${NODE_IP}", ', ""),
        env={"NODE_IPS": "2001:db8:ff::2,10.0.0.2"},
    )
    assert ipv6_primary.node.router_id == IPv4Address("10.0.0.2")
    assert ipv6_primary.node.client_router_id == IPv4Address("127.0.0.2")
    assert with_node(router_id="", address="10.0.0.3").node.router_id == IPv4Address("10.0.0.3")
    assert with_node(router_id="10.9.9.9", addresses="10.0.0.2").node.router_id == IPv4Address(
        "10.9.9.9"
    )


def test_an_ipv6_only_node_must_give_its_router_id() -> None:
    doc = yaml.safe_load(TEXT)
    doc["node"] = {"asn": 64512, "addresses": "2001:db8::2"}
    doc["upstreams"][0]["address"] = "2001:db8::1"
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(doc), env={})
    assert dict(info.value.errors) == {
        "node.router_id": "required on a node without an IPv4 address (it defaults to "
        "node.address): a BGP identifier is four octets (RFC 6286); give one unique in the AS"
    }
