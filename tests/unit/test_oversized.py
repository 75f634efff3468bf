"""Routes too large for a peer's messages: never sent to it, withdrawn from it, counted, and the
core goes on (the inputs in ``tests/cases/`` once stopped the whole mux)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bgpmux.core import Core
from bgpmux.core.events import ClientDown, ClientEstablished, ClientUpdate, UpstreamRoutes
from bgpmux.core.views import advertised
from bgpmux.engines.fake import FakeEngine
from bgpmux.wire import IPV4_UNICAST, CodecOptions, Framer, Update
from bgpmux.wire.constants import MAX_EXTENDED_MESSAGE_LEN
from bgpmux.wire.messages import decode_body
from bgpmux.wire.prefix import prefix_from_str

from .core_helpers import FakeLink, announce, withdraw

CASES = Path(__file__).parent.parent / "cases"
EXTENDED = CodecOptions(max_message_len=MAX_EXTENDED_MESSAGE_LEN)


def case(name: str) -> Update:
    data = bytes.fromhex((CASES / name).read_text().strip())
    [(kind, body)] = Framer(MAX_EXTENDED_MESSAGE_LEN).feed(data)
    update = decode_body(kind, body, EXTENDED)
    assert isinstance(update, Update)
    return update


def key(prefix: str) -> tuple[object, bytes]:
    return prefix_from_str(prefix)


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("D1-update-1100-communities.hex", "10.244.5.0/24"),
        ("D1-update-4096-octets-unknown-transitive.hex", "198.51.100.20/32"),
        ("D1b-update-1012-communities.hex", "10.244.5.0/24"),
    ],
)
def test_a_route_too_large_for_the_upstream_is_withheld_and_the_core_goes_on(
    setup: tuple[Core, FakeEngine, FakeLink, FakeLink], name: str, prefix: str
) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", case(name)), 1.0)
    core.flush(1.0)
    assert prefix not in engine.table(IPV4_UNICAST)
    assert core.exporter.too_large["tor"] == {key(prefix)}
    assert core.exporter.withheld("tor", IPV4_UNICAST) == 1
    assert advertised(core, "tor", IPV4_UNICAST) == len(core.for_upstreams.table(IPV4_UNICAST)) - 1
    # the core still serves: another route goes up, and a withdrawal clears the record
    core.handle(ClientUpdate("calico", announce("10.244.9.0/24")), 2.0)
    core.flush(2.0)
    assert "10.244.9.0/24" in engine.table(IPV4_UNICAST)
    core.handle(ClientUpdate("calico", withdraw(prefix)), 3.0)
    core.flush(3.0)
    assert not core.exporter.too_large["tor"]
    assert core.exporter.withheld("tor", IPV4_UNICAST) == 0
    assert advertised(core, "tor", IPV4_UNICAST) == len(core.for_upstreams.table(IPV4_UNICAST))


def test_a_route_that_grows_too_large_is_withdrawn_and_comes_back_when_it_fits(
    setup: tuple[Core, FakeEngine, FakeLink, FakeLink],
) -> None:
    core, engine, _calico, _metallb = setup
    core.handle(ClientUpdate("calico", announce("10.244.5.0/24", communities=(1, 2))), 1.0)
    core.flush(1.0)
    assert "10.244.5.0/24" in engine.table(IPV4_UNICAST)
    core.handle(ClientUpdate("calico", case("D1-update-1100-communities.hex")), 2.0)
    core.flush(2.0)
    assert "10.244.5.0/24" not in engine.table(IPV4_UNICAST)
    assert engine.withdraws[-1].prefixes == (key("10.244.5.0/24")[1],)
    core.handle(ClientUpdate("calico", announce("10.244.5.0/24", communities=(3,))), 3.0)
    core.flush(3.0)
    assert "10.244.5.0/24" in engine.table(IPV4_UNICAST)
    assert not core.exporter.too_large["tor"]


def test_upstream_routes_too_large_for_a_client_are_withdrawn_from_it_only(
    setup: tuple[Core, FakeEngine, FakeLink, FakeLink],
) -> None:
    """ToR -> client: the client's session allows 4096 octets; LOCAL_PREF added for iBGP pushes
    an attribute set that just fitted the upstream's message over the client's."""
    core, _engine, calico, _metallb = setup
    big = case("D1-update-1100-communities.hex")
    [(family, attrs, next_hop, prefixes)] = list(big.announcements())
    core.handle(
        UpstreamRoutes("tor", family, replace(attrs, next_hop=None), next_hop, prefixes), 1.0
    )
    core.handle(
        UpstreamRoutes("tor", family, attrs.__class__(), next_hop, [key("10.9.0.0/16")[1]]), 1.0
    )
    core.flush(1.0)
    assert all(len(m) <= calico.options.max_message_len for m in calico.sent)
    table = calico.table()
    assert "10.244.5.0/24" not in table and "10.9.0.0/16" in table
    assert core.exporter.too_large["calico"] == {key("10.244.5.0/24")}
    core.handle(ClientDown("calico", None), 2.0)
    assert "calico" not in core.exporter.too_large


def test_extended_message_client_gets_what_fits_in_its_larger_messages(
    setup: tuple[Core, FakeEngine, FakeLink, FakeLink],
) -> None:
    core, _engine, _calico, _metallb = setup
    wide = FakeLink()
    wide.options = EXTENDED
    core.handle(ClientDown("calico", None), 1.0)
    core.handle(ClientEstablished("calico", wide, False), 1.0)
    big = case("D1-update-1100-communities.hex")
    [(family, attrs, next_hop, prefixes)] = list(big.announcements())
    core.handle(UpstreamRoutes("tor", family, attrs, next_hop, prefixes), 2.0)
    core.flush(2.0)
    assert "10.244.5.0/24" in wide.table()
    assert max(len(m) for m in wide.sent) > 4096
    assert not core.exporter.too_large.get("calico")
