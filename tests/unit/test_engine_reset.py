"""The engines' side of a changed session identity (``reset_upstream``) and of IPv6 sessions:
the exabgp engine's files, commands and address map; what the native engine offers. No
ExaBGP runs here, no socket is opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from bgpmux.config import Config, Upstream, parse_config
from bgpmux.engines import exabgp_text as text
from bgpmux.engines.exabgp import ExaBGPEngine
from bgpmux.engines.native import NativeEngine
from bgpmux.session import State
from bgpmux.wire.constants import IPV4_UNICAST, IPV6_UNICAST

from .test_engine_exabgp import RecordingEvents

DUAL = """
node: {asn: 64512, router_id: 10.0.0.2, address: 10.0.0.2, address_v6: "2001:db8:ff::2"}
upstreams:
  - {name: tor, address: "2001:db8:ff::1", asn: 65000}
  - {name: tor-b, address: 10.0.0.9, asn: 65000}
clients: [{name: calico, listen: "127.0.0.1:1790", asn: 64512}]
"""

V6_ONLY = """
node: {asn: 64512, router_id: 10.255.0.3, address_v6: "2001:db8:3::2"}
upstreams: [{name: tor, address: "2001:db8:3::1", asn: 65000}]
clients: [{name: calico, listen: "[::1]:1790", asn: 64512}]
"""


def config(text_: str, **replace: str) -> Config:
    for old, new in replace.items():
        text_ = text_.replace(old, new)
    return parse_config(text_, env={})


def upstream(config_: Config, name: str) -> Upstream:
    return next(u for u in config_.upstreams if u.name == name)


def test_an_ipv6_session_carries_both_families_in_both_engines() -> None:
    cfg = config(DUAL)
    block = text.exabgp_config(cfg, ["relay"]).split("neighbor 2001:db8:ff::1 {")[1]
    block = block.split("neighbor 10.0.0.9")[0]
    assert "    local-address 2001:db8:ff::2;" in block
    assert "family {\n        ipv4 unicast;\n        ipv6 unicast;\n    }" in block
    assert NativeEngine(cfg, RecordingEvents()).families == (IPV4_UNICAST, IPV6_UNICAST)


def test_an_ipv6_only_node_carries_ipv6_only() -> None:
    cfg = config(V6_ONLY)
    out = text.exabgp_config(cfg, ["relay"])
    assert "    router-id 10.255.0.3;" in out
    assert "    local-address 2001:db8:3::2;" in out
    assert "family {\n        ipv6 unicast;\n    }" in out
    assert NativeEngine(cfg, RecordingEvents()).families == (IPV6_UNICAST,)


def test_exabgp_reset_to_a_new_address_rewrites_its_config(tmp_path: Path) -> None:
    events = RecordingEvents()
    engine = ExaBGPEngine(config(DUAL), events, tmp_path)
    engine._handle(text.StateChange("10.0.0.9", "up"), 1.0)
    moved = config(DUAL, **{"address: 10.0.0.9": "address: 10.0.0.5"})
    engine.reset_upstream(upstream(moved, "tor-b"))
    written = engine.config_path.read_text()
    assert "neighbor 10.0.0.5 {" in written and "10.0.0.9" not in written
    assert engine.addresses["tor-b"] == "10.0.0.5"
    assert [s.state for s in engine.status()] == [State.IDLE, State.IDLE]
    # the old session's end is no news to the core, which took it down itself
    engine._handle(text.StateChange("10.0.0.9", "down", "removed"), 2.0)
    engine._handle(text.StateChange("10.0.0.5", "up"), 3.0)
    assert [name for name, _args in events.posts] == ["established", "established"]
    assert list(engine._queue) == []  # a reload (SIGUSR1 to a running ExaBGP), no command


def test_exabgp_reset_that_exabgp_cannot_see_is_a_teardown(tmp_path: Path) -> None:
    for name in ("a.password", "b.password"):
        (tmp_path / name).write_text("same\n")
    with_password = DUAL.replace("10.0.0.9, asn: 65000}", "10.0.0.9, asn: 65000, password_file: P}")
    before = config(with_password.replace("P", str(tmp_path / "a.password")))
    after = config(with_password.replace("P", str(tmp_path / "b.password")))
    engine = ExaBGPEngine(before, RecordingEvents(), tmp_path / "wd")
    engine.reset_upstream(upstream(after, "tor-b"))
    assert list(engine._queue) == ["neighbor 10.0.0.9 teardown 6"]  # Other Configuration Change


def test_exabgp_reset_with_an_unreadable_password_changes_nothing(tmp_path: Path) -> None:
    engine = ExaBGPEngine(config(DUAL), RecordingEvents(), tmp_path)
    broken = config(
        DUAL, **{"10.0.0.9, asn: 65000}": "10.0.0.5, asn: 65000, password_file: /nope}"}
    )
    with pytest.raises(OSError):
        engine.reset_upstream(upstream(broken, "tor-b"))
    assert engine.addresses["tor-b"] == "10.0.0.9"
    assert upstream(engine.config, "tor-b").password_file is None
