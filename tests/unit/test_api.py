"""The API's data: the routes as sent (from the exporter's own transform), the core's watch
hook and the event fan-out, the route filters, and the conversions to and from messages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bgpmux.api.convert import (
    PeerSnapshot,
    event_dict,
    event_message,
    peer_dict,
    peer_message,
    route_dict,
    route_message,
)
from bgpmux.api.events import EventHub
from bgpmux.api.server import route_filter
from bgpmux.core import Core
from bgpmux.core.events import ClientDown, ClientUpdate, RoutesQuery, UpstreamDown
from bgpmux.core.views import next_hop_str
from bgpmux.core.watch import ConflictSeen, RouteChange, SessionChange
from bgpmux.engines.fake import FakeEngine
from bgpmux.session.facts import SessionFacts
from bgpmux.session.states import State
from bgpmux.v1 import events_pb2, routes_pb2
from bgpmux.wire import IPV4_UNICAST

from .core_helpers import FakeLink, announce

Rack = tuple[Core, FakeEngine, FakeLink, FakeLink]


def exported(core: Core, upstream: str | None = None) -> list[dict[str, Any]]:
    view = core.handle(RoutesQuery(upstream=upstream), 1.0)
    assert isinstance(view, dict)
    rows: list[dict[str, Any]] = view["routes"]
    return rows


def test_exported_rows_are_what_the_engine_was_sent(setup: Rack) -> None:
    core, engine, _calico, _metallb = setup
    update = announce(
        "198.51.100.0/24", nh="127.0.0.1", as_path=(64514,), med=10,
        communities=(64514 << 16 | 10,), large_communities=((64512, 1, 2),),
    )  # fmt: skip
    core.handle(ClientUpdate("metallb", update), 1.0)
    core.flush(1.0)
    [row] = exported(core)
    sent_attrs, sent_next_hop = engine.table(IPV4_UNICAST, "tor")["198.51.100.0/24"]
    assert row["upstream"] == "tor" and row["client"] == "metallb" and row["best"] is True
    assert row["next_hop"] == next_hop_str(sent_next_hop) == "10.0.0.2"  # the node, not 127.0.0.1
    assert row["as_path"] == list(sent_attrs.as_path_flat()) == [64512]  # as the ToR sees it
    assert row["med"] == 10
    # metallb's add_communities tag goes out too
    assert row["communities"] == ["64514:10", "64512:100"]
    assert row["large_communities"] == ["64512:1:2"]
    assert exported(core, "tor") == [row]
    assert core.handle(RoutesQuery(upstream="nope"), 1.0) == {"error": "no upstream named 'nope'"}


def test_client_rows_mark_best_stale_and_refused(setup: Rack) -> None:
    core, _engine, _calico, _metallb = setup
    core.handle(ClientUpdate("metallb", announce("198.51.100.0/24", "10.96.0.0/12")), 1.0)
    core.flush(1.0)
    view = core.handle(RoutesQuery(client="metallb"), 1.0)
    assert isinstance(view, dict)
    rows = {r["prefix"]: r for r in view["routes"]}
    assert rows["198.51.100.0/24"]["best"] and rows["198.51.100.0/24"]["reason"] is None
    assert rows["10.96.0.0/12"]["reason"] == "not_in_accept_list"
    assert rows["10.96.0.0/12"]["client"] == "metallb"


def test_the_core_tells_a_watcher_only_while_one_is_set(setup: Rack) -> None:
    core, _engine, _calico, _metallb = setup
    seen: list[object] = []
    core.handle(ClientUpdate("metallb", announce("198.51.100.0/24")), 1.0)
    core.flush(1.0)  # nobody watches: nothing to record, nothing built
    core.watcher = seen.append
    core.handle(ClientUpdate("calico", announce("198.51.100.0/24")), 2.0)  # a conflict
    core.flush(2.0)
    core.handle(ClientDown("calico"), 3.0)
    core.handle(UpstreamDown("tor", 5.0), 3.0)
    core.flush(3.0)
    conflict = ConflictSeen("198.51.100.0/24", "ipv4-unicast", "calico", ("metallb",), "priority")
    assert seen[:2] == [conflict, RouteChange(True, "ipv4-unicast", ("198.51.100.0/24",), ())]
    assert SessionChange("calico", "client", False) in seen
    assert SessionChange("tor", "upstream", False, 5.0) in seen


def test_route_changes_reach_the_watcher(setup: Rack) -> None:
    core, _engine, _calico, _metallb = setup
    seen: list[object] = []
    core.watcher = seen.append
    core.handle(ClientUpdate("metallb", announce("198.51.100.0/24")), 1.0)
    core.flush(1.0)
    assert seen == [RouteChange(True, "ipv4-unicast", ("198.51.100.0/24",), ())]


class _Runner:
    def __init__(self, core: Any) -> None:
        self.core = core


async def test_a_slow_watcher_loses_events_not_memory() -> None:
    core = type("C", (), {"watcher": None})()
    hub = EventHub(_Runner(core), limit=3)  # type: ignore[arg-type]
    watcher = hub.watch()
    assert core.watcher is not None
    for n in range(10):
        hub.change(SessionChange(f"p{n}", "client", True))
    assert watcher.queue.qsize() == 3 and watcher.lost == 7
    events = watcher.events()
    first = await anext(events)
    assert first.WhichOneof("kind") == "lost" and first.lost == 7
    assert (await anext(events)).session.peer == "p0"
    hub.unwatch(watcher)
    assert core.watcher is None
    await asyncio.sleep(0)


def test_route_filter() -> None:
    def rows(**request: Any) -> list[str]:
        keep = route_filter(routes_pb2.ListRoutesRequest(**request))
        table = [
            {"prefix": "10.244.0.0/26", "family": "ipv4-unicast", "reason": None, "stale": True},
            {"prefix": "10.96.0.0/12", "family": "ipv4-unicast", "reason": "x", "stale": False},
            {"prefix": "2001:db8::/64", "family": "ipv6-unicast", "reason": None, "stale": False},
        ]
        return [r["prefix"] for r in table if keep(r)]

    assert rows(prefix="10.244.0.0/26") == ["10.244.0.0/26"]
    assert rows(prefix="10.100.1.1") == ["10.96.0.0/12"]  # the prefixes that hold it
    assert rows(family="ipv6") == ["2001:db8::/64"]
    assert rows(rejected=True) == ["10.96.0.0/12"]
    assert rows(stale=True) == ["10.244.0.0/26"]
    with pytest.raises(ValueError, match="not a prefix or address"):
        route_filter(routes_pb2.ListRoutesRequest(prefix="nope"))
    with pytest.raises(ValueError, match="family 'ipv5'"):
        route_filter(routes_pb2.ListRoutesRequest(family="ipv5"))


def test_route_round_trip() -> None:
    row = {"upstream": "tor", "client": "calico", "prefix": "10.244.0.0/26",
           "family": "ipv4-unicast", "next_hop": "10.0.0.2", "as_path": [64512], "med": None,
           "local_pref": None, "communities": ["64514:10"], "large_communities": ["64512:1:2"],
           "origin": "igp", "stale": False, "best": True, "reason": None}  # fmt: skip
    assert route_dict(route_message(row)) == row
    zero = {**row, "med": 0}  # a MED of 0 is not "no MED"
    assert route_dict(route_message(zero))["med"] == 0


@pytest.mark.parametrize(
    ("state", "name"),
    [(State.IDLE, "IDLE"), (State.OPEN_SENT, "OPENSENT"), (State.OPEN_CONFIRM, "OPENCONFIRM"),
     (State.ESTABLISHED, "ESTABLISHED")],
)  # fmt: skip
def test_peer_state_spelling_and_config_fallback(state: State, name: str) -> None:
    counts = {"accepted": 2, "received": 3}
    snapshot = PeerSnapshot(
        "tor", "upstream", state, SessionFacts(), "10.0.0.1", 65000, 100.0, 130.0, counts
    )
    peer = peer_dict(peer_message(snapshot))
    assert (peer["state"], peer["address"], peer["asn"]) == (name, "10.0.0.1", 65000)
    assert peer["uptime"] == (30.0 if state is State.ESTABLISHED else None)
    facts = SessionFacts(address="10.0.0.9", asn=65009, hold_time=9, capabilities=("x",))
    own = peer_dict(peer_message(PeerSnapshot("tor", "upstream", state, facts, "10.0.0.1",
                                              65000, None, 0.0)))  # fmt: skip
    assert (own["address"], own["asn"], own["hold_time"], own["capabilities"]) == (
        "10.0.0.9", 65009, 9, ["x"])  # fmt: skip


def test_event_conversion() -> None:
    event = event_message(SessionChange("tor", "upstream", False, 120.0), 5.0)
    assert event_dict(event) == {
        "time": 5.0, "type": "session", "peer": "tor", "role": "upstream", "state": "IDLE",
        "stale_time": 120.0,
    }  # fmt: skip
    lost = events_pb2.Event(time=1.0, lost=3)
    assert event_dict(lost) == {"time": 1.0, "type": "lost", "lost": 3}
