"""TCP-MD5 on client listeners, GTSM towards upstreams, and the upstreams' import policy
(``accept``, ``max_prefixes``): config validation, the socket options chosen, the upstream
channel, the core and a reload. No sockets."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from bgpmux.config import Config, ConfigError, parse_config
from bgpmux.core import Core
from bgpmux.core.events import (
    ClientEstablished,
    Reconfigure,
    RoutesQuery,
    UpstreamEstablished,
    UpstreamRoutes,
    UpstreamWithdrawn,
)
from bgpmux.core.reload import plan
from bgpmux.core.views import peer_counts
from bgpmux.engines import exabgp_text
from bgpmux.engines.fake import FakeEngine
from bgpmux.policy.channels import UpstreamChannel
from bgpmux.policy.prefix_list import PrefixRule
from bgpmux.policy.transforms import RejectReason
from bgpmux.secrets import check_files
from bgpmux.transport.gtsm import GTSM_TTL, IP_MINTTL, IPV6_MINHOPCOUNT, gtsm_options
from bgpmux.transport.md5 import md5_keys
from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST, PathAttributes
from bgpmux.wire.prefix import prefix_from_str

from .core_helpers import FakeLink, attrs

NODE_AS = 64512
TOR_NH = ipaddress.ip_address("10.0.0.1").packed


def doc(upstream: dict[str, Any] | None = None, **client: Any) -> dict[str, Any]:
    return {
        "node": {"asn": NODE_AS, "router_id": "10.0.0.2", "address": "10.0.0.2"},
        "engine": "native",
        "upstreams": [{"name": "tor", "address": "10.0.0.1", "asn": 65000, **(upstream or {})}],
        "clients": [
            {"name": "calico", "listen": "127.0.0.1:1790", "asn": NODE_AS, **client},
            {"name": "other", "listen": "127.0.0.1:1791", "asn": 64514, "accept": []},
        ],
    }


def parse(document: dict[str, Any]) -> Config:
    return parse_config(yaml.safe_dump(document), env={})


def errors_of(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse(document)
    return dict(info.value.errors)


def p(text: str) -> bytes:
    return prefix_from_str(text)[1]


# --- config ------------------------------------------------------------------------------------


def test_new_fields_default_to_off_and_everything() -> None:
    config = parse(doc())
    tor = config.upstreams[0]
    assert (tor.ttl_security, tor.accept, tor.max_prefixes) == (False, None, None)
    assert config.clients[0].password_file is None


def test_new_fields_parse() -> None:
    upstream = {"ttl_security": True, "accept": ["0.0.0.0/0", "10.0.0.0/8 le 24"],
                "max_prefixes": 100}  # fmt: skip
    config = parse(doc(upstream, password_file="/etc/k", peer_address="127.0.0.1"))
    tor = config.upstreams[0]
    assert tor.ttl_security and tor.max_prefixes == 100
    assert tor.accept == (PrefixRule.parse("0.0.0.0/0"), PrefixRule.parse("10.0.0.0/8 le 24"))
    assert config.clients[0].password_file == Path("/etc/k")
    assert parse(doc({"accept": []})).upstreams[0].accept == ()  # nothing accepted


@pytest.mark.parametrize(
    ("upstream", "path", "message"),
    [
        ({"max_prefixes": 0}, "upstreams[0].max_prefixes", "greater than or equal to 1"),
        ({"accept": ["10.0.0.0/33"]}, "upstreams[0].accept[0]", "10.0.0.0/33"),
        ({"ttl_security": "maybe"}, "upstreams[0].ttl_security", "valid boolean"),
    ],
)
def test_bad_upstream_fields_are_named(upstream: dict[str, Any], path: str, message: str) -> None:
    errors = errors_of(doc(upstream))
    assert list(errors) == [path] and message in errors[path]


def test_client_password_needs_a_peer_address_of_the_listen_family() -> None:
    errors = errors_of(doc(password_file="/etc/k"))
    assert list(errors) == ["clients[0].peer_address"]
    assert "required with password_file" in errors["clients[0].peer_address"]
    errors = errors_of(doc(password_file="/etc/k", peer_address="::1"))
    assert errors == {"clients[0].peer_address": "must be IPv4 like listen, for TCP-MD5"}
    parse(doc(peer_address="::1"))  # without a password: never matches, but not refused


def test_client_password_files_are_checked_like_the_upstreams(tmp_path: Path) -> None:
    good, long_key, quoted = tmp_path / "good", tmp_path / "long", tmp_path / "quoted"
    good.write_text("s3cret\n")
    long_key.write_text("x" * 81)
    quoted.write_text('se"cret;{}')
    config = parse(doc(password_file=str(long_key), peer_address="127.0.0.1"))
    with pytest.raises(ConfigError) as info:
        check_files(config)
    errors = dict(info.value.errors)
    assert list(errors) == ["clients[0].password_file"]
    assert "at most 80 octets" in errors["clients[0].password_file"]
    missing = parse(doc(password_file=str(tmp_path / "nope"), peer_address="127.0.0.1"))
    with pytest.raises(ConfigError, match="cannot read"):
        check_files(missing)
    # bgpmux itself serves clients: what ExaBGP cannot quote is fine there, with either engine
    exabgp = {**doc(password_file=str(quoted), peer_address="127.0.0.1"), "engine": "exabgp"}
    check_files(parse(exabgp))
    check_files(parse(doc(password_file=str(good), peer_address="127.0.0.1")))


def test_the_gobgp_engine_needs_gobgpd_in_path_unless_external(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bgpmux import secrets

    monkeypatch.setattr(secrets, "gobgp_stubs_problem", lambda: None)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError) as info:
        check_files(parse({**doc(), "engine": "gobgp"}))
    assert "gobgpd, which is not in PATH" in dict(info.value.errors)["engine"]
    check_files(parse({**doc(), "engine": "gobgp", "gobgp": {"external": True}}))


def test_md5_keys_are_per_peer_address(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("s3cret\n")
    config = parse(doc(password_file=str(key), peer_address="10.0.0.2"))
    assert md5_keys(config.clients) == {"10.0.0.2": b"s3cret"}


# --- GTSM --------------------------------------------------------------------------------------


def test_gtsm_sends_255_and_requires_255() -> None:
    assert GTSM_TTL == 255
    assert gtsm_options(4) == [
        (socket.IPPROTO_IP, socket.IP_TTL, 255),
        (socket.IPPROTO_IP, IP_MINTTL, 255),
    ]
    assert gtsm_options(6) == [
        (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255),
        (socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, 255),
    ]
    assert (IP_MINTTL, IPV6_MINHOPCOUNT) == (21, 73)  # Linux's numbers
    with pytest.raises(ValueError):
        gtsm_options(5)


def test_exabgp_neighbor_gets_outgoing_and_incoming_ttl() -> None:
    relay = ["relay"]
    plain = exabgp_text.exabgp_config(parse(doc()), relay)
    assert "ttl" not in plain
    gtsm = exabgp_text.exabgp_config(parse(doc({"ttl_security": True})), relay)
    assert "    outgoing-ttl 255;\n    incoming-ttl 255;\n" in gtsm


# --- the upstream channel ----------------------------------------------------------------------


def channel(**policy: Any) -> UpstreamChannel:
    config = parse(doc(policy)).upstreams[0]
    return UpstreamChannel("tor", 0, True, False, NODE_AS, config)


def announced(ch: UpstreamChannel, *prefixes: str, as_path: tuple[int, ...] = (65000,)) -> Any:
    return ch.receive(IPV4_UNICAST, attrs(as_path), TOR_NH, [p(x) for x in prefixes])


def test_upstream_accepts_everything_by_default() -> None:
    ch = channel()
    out = announced(ch, "0.0.0.0/0", "10.99.0.0/16")
    assert out.rejected == [] and ch.rib.count() == 2


def test_upstream_accept_list_refuses_and_reports_once() -> None:
    ch = channel(accept=["0.0.0.0/0", "10.0.0.0/8 le 24"])
    out = announced(ch, "0.0.0.0/0", "10.99.0.0/16", "10.1.2.3/32")
    assert out.rejected == [(IPV4_UNICAST, p("10.1.2.3/32"), RejectReason.NOT_ACCEPTED)]
    assert {prefix for _f, prefix, _p, _s in ch.rib.items()} == {p("0.0.0.0/0"), p("10.99.0.0/16")}
    assert announced(ch, "10.1.2.3/32").rejected == []  # once
    assert set(ch.imports.rejected) == {(IPV4_UNICAST, p("10.1.2.3/32"))}
    ch.withdraw(IPV4_UNICAST, [p("10.1.2.3/32")])
    assert ch.imports.rejected == {}


def test_upstream_accept_list_of_one_family_refuses_the_other() -> None:
    ch = channel(accept=["0.0.0.0/0 le 32"])
    v6 = ch.receive(IPV6_UNICAST, attrs((65000,)), bytes(16), [p("2001:db8:99::/48")])
    assert [r[1] for r in v6.rejected] == [p("2001:db8:99::/48")] and ch.rib.count() == 0


def test_upstream_max_prefixes_drops_new_prefixes_and_keeps_the_session() -> None:
    ch = channel(max_prefixes=2)
    out = announced(ch, "10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16")
    assert out.limit_reached == 2
    assert ch.rib.count() == 2 and ch.imports.blocked == 1
    # an update of a held one (a new path) goes through
    again = announced(ch, "10.4.0.0/16", "10.1.0.0/16", as_path=(65000, 65001))
    assert again.limit_reached is None  # logged once
    assert ch.imports.blocked == 2 and ch.rib.count() == 2
    [(_f, accepted, path)] = [c for c in again.changes if c[2] is not None]
    assert list(accepted) == [p("10.1.0.0/16")] and path is not None
    ch.withdraw(IPV4_UNICAST, [p("10.1.0.0/16")])
    assert not ch.imports.at_limit
    assert announced(ch, "10.4.0.0/16").limit_reached is None and ch.rib.count() == 2
    assert announced(ch, "10.5.0.0/16").limit_reached == 2  # reached again


def test_upstream_refused_prefixes_count_towards_the_limit() -> None:
    ch = channel(accept=["10.1.0.0/16"], max_prefixes=2)
    announced(ch, "10.1.0.0/16", "10.9.0.0/16", "10.8.0.0/16")
    assert ch.rib.count() == 1 and len(ch.imports.rejected) == 1 and ch.imports.blocked == 1


def test_upstream_loops_are_still_checked_first() -> None:
    ch = channel(accept=["10.0.0.0/8 le 32"])
    out = announced(ch, "10.1.0.0/16", as_path=(65000, NODE_AS))
    assert out.looped == [p("10.1.0.0/16")] and out.rejected == []


def test_upstream_reconfigure_judges_every_route_again() -> None:
    ch = channel(accept=["10.1.0.0/16"])
    announced(ch, "10.1.0.0/16", "10.2.0.0/16")
    wider = parse(doc({"accept": ["10.0.0.0/8 le 16"]})).upstreams[0]
    out = ch.reconfigure(wider)
    assert ch.rib.count() == 2 and ch.imports.rejected == {}
    assert [(f, sorted(prefixes), path) for f, prefixes, path in out.changes] == [
        (IPV4_UNICAST, sorted([p("10.1.0.0/16"), p("10.2.0.0/16")]), None)
    ]
    narrower = parse(doc({"accept": ["10.2.0.0/16"]})).upstreams[0]
    out = ch.reconfigure(narrower)
    assert {r[1] for r in out.rejected} == {p("10.1.0.0/16")}
    assert [prefix for _f, prefix, _p, _s in ch.rib.items()] == [p("10.2.0.0/16")]


def test_upstream_reconfigure_keeps_stale_routes_stale() -> None:
    ch = channel()
    announced(ch, "10.1.0.0/16", "10.2.0.0/16")
    ch.keep_stale(None, 100.0)
    ch.reconfigure(parse(doc({"accept": ["10.1.0.0/16"]})).upstreams[0])
    assert [(prefix, stale) for _f, prefix, _p, stale in ch.rib.items()] == [
        (p("10.1.0.0/16"), True)
    ]


# --- the core and a reload ---------------------------------------------------------------------


@pytest.fixture
def rack() -> tuple[Core, FakeLink]:
    config = parse(
        {**doc({"accept": ["0.0.0.0/0"]}, receive_upstream_routes=True, accept=["10.244.0.0/16"])}
    )
    core = Core(config, FakeEngine(), now=0.0)
    core.handle(UpstreamEstablished("tor"), 0.0)
    calico = FakeLink()
    core.handle(ClientEstablished("calico", calico, False), 0.0)
    core.flush(0.0)
    return core, calico


def tor_routes(core: Core, now: float, *prefixes: str) -> None:
    tor_attrs: PathAttributes = attrs((65000,), next_hop=TOR_NH)
    event = UpstreamRoutes("tor", IPV4_UNICAST, tor_attrs, TOR_NH, [p(x) for x in prefixes])
    core.handle(event, now)
    core.flush(now)


def test_refused_upstream_routes_do_not_reach_clients_and_are_shown(rack) -> None:
    core, calico = rack
    tor_routes(core, 1.0, "0.0.0.0/0", "10.99.0.0/16")
    assert set(calico.table()) == {"0.0.0.0/0"}
    view = core.handle(RoutesQuery(received_from="tor"), 1.0)
    assert isinstance(view, dict)
    assert [(r["prefix"], r["upstream"], r["reason"]) for r in view["routes"]] == [
        ("0.0.0.0/0", "tor", None),
        ("10.99.0.0/16", "tor", "not_in_accept_list"),
    ]
    assert view["routes"][1]["as_path"] == [65000]  # the refused route's own attributes
    counts = peer_counts(core)["tor"]
    assert (counts["received"], counts["accepted"], counts["rejected"]) == (2, 1, 1)
    assert counts["rejected_by_reason"] == {"not_in_accept_list": 1}


def test_reload_widens_an_upstream_accept_list_without_a_reset(rack) -> None:
    core, calico = rack
    tor_routes(core, 1.0, "0.0.0.0/0", "10.99.0.0/16")
    new = parse(doc({"accept": None}, receive_upstream_routes=True, accept=["10.244.0.0/16"]))
    pending = core.handle(Reconfigure(new), 2.0)
    core.flush(2.0)
    assert pending == []
    assert set(calico.table()) == {"0.0.0.0/0", "10.99.0.0/16"}
    assert core.upstreams["tor"].up and core.clients["calico"].link is calico
    tor_routes(core, 3.0, "10.98.0.0/16")
    core.handle(UpstreamWithdrawn("tor", IPV4_UNICAST, [p("10.99.0.0/16")]), 4.0)
    core.flush(4.0)
    assert set(calico.table()) == {"0.0.0.0/0", "10.98.0.0/16"}


def test_reload_policy_and_identity_of_upstreams_are_told_apart() -> None:
    running = parse(doc())
    policy_only = plan(running, parse(doc({"accept": ["0.0.0.0/0"], "max_prefixes": 10})))
    assert (policy_only.pending, policy_only.resets) == ([], [])
    assert [u.name for u in policy_only.upstream_policies] == ["tor"]
    gtsm = plan(running, parse(doc({"ttl_security": True})))  # identity: a reset, no restart
    assert gtsm.pending == [] and gtsm.reset_fields == {"tor": ["ttl_security"]}
    password = plan(running, parse(doc(password_file="/k", peer_address="127.0.0.1")))
    assert password.pending == [] and password.clients_removed == ["calico"]
    assert password.client_fields == {"calico": ["password_file", "peer_address"]}
