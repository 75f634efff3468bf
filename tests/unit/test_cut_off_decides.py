"""A client cut off at ``max_prefixes`` (RFC 4486 §4): what its last UPDATE (or a reload)
changed in its Adj-RIB-In before the cut-off is decided too, so a withdrawal in that UPDATE
reaches the upstreams and the Loc-RIB's view keeps no entry nobody holds."""

from __future__ import annotations

import dataclasses

from bgpmux.config import parse_config
from bgpmux.core import Core
from bgpmux.core.events import ClientUpdate, Reconfigure, UpstreamDown, UpstreamEstablished
from bgpmux.engines.fake import FakeEngine
from bgpmux.rib.adj_rib_in import AdjRibIn
from bgpmux.rib.loc_rib import LocRib
from bgpmux.rib.paths import Path, Source
from bgpmux.wire import IPV4_UNICAST, PathAttributes, Update
from bgpmux.wire.prefix import prefix_from_str

from .core_helpers import CONFIG, FakeLink, announce, withdraw

Setup = tuple[Core, FakeEngine, FakeLink, FakeLink]
CEASE_MAX_PREFIXES = [(6, 1)]


def _p(text: str) -> bytes:
    return prefix_from_str(text)[1]


def _withdraw_and_announce(gone: str, *new: str, **kw: object) -> Update:
    """One UPDATE: ``gone`` withdrawn, ``new`` announced."""
    return dataclasses.replace(announce(*new, **kw), withdrawn=(_p(gone),))


def test_a_withdrawal_in_the_update_that_cuts_off_reaches_the_upstream(setup: Setup) -> None:
    core, engine, _calico, metallb = setup
    core.handle(ClientUpdate("metallb", announce("198.51.100.1/32")), 1.0)
    core.flush(1.0)
    assert "198.51.100.1/32" in engine.table(IPV4_UNICAST)
    many = [f"198.51.100.{i}/32" for i in range(2, 10)]  # over metallb's max_prefixes (5)
    core.handle(ClientUpdate("metallb", _withdraw_and_announce("198.51.100.1/32", *many)), 2.0)
    core.flush(2.0)
    assert [(n.code, n.subcode) for n in metallb.shutdowns] == CEASE_MAX_PREFIXES
    assert engine.table(IPV4_UNICAST) == {}
    assert len(core.for_upstreams.table(IPV4_UNICAST)) == 0


def test_a_contested_prefix_withdrawn_as_its_holder_is_cut_off(setup: Setup) -> None:
    """The other holder's path takes over; once it goes too, nothing is left anywhere, and a
    new upstream session gets an empty table (it once raised: a negative ``len``)."""
    core, engine, _calico, _metallb = setup
    contested = "198.51.100.20/32"
    core.handle(ClientUpdate("metallb", announce(contested, med=50)), 1.0)
    core.handle(ClientUpdate("calico", announce(contested, med=10)), 1.0)
    core.flush(1.0)
    assert engine.table(IPV4_UNICAST)[contested][0].med == 10
    many = [f"10.244.0.{i}/32" for i in range(1, 12)]  # over calico's max_prefixes (10)
    core.handle(ClientUpdate("calico", _withdraw_and_announce(contested, *many)), 2.0)
    core.flush(2.0)
    view = core.for_upstreams.table(IPV4_UNICAST)
    assert view[_p(contested)].source.name == "metallb"
    assert engine.table(IPV4_UNICAST)[contested][0].med == 50
    core.handle(ClientUpdate("metallb", withdraw(contested)), 3.0)
    core.flush(3.0)
    assert engine.table(IPV4_UNICAST) == {}
    assert len(view) == 0 and list(view) == []
    core.handle(UpstreamDown("tor"), 4.0)
    core.flush(4.0)
    core.handle(UpstreamEstablished("tor"), 5.0)
    core.flush(5.0)
    assert engine.table(IPV4_UNICAST) == {}


def test_a_reload_that_cuts_off_withdraws_what_it_refused(setup: Setup) -> None:
    core, engine, _calico, _metallb = setup
    pods = [f"10.244.0.{i}/32" for i in range(1, 6)]
    core.handle(ClientUpdate("calico", announce("198.51.100.20/32", *pods)), 1.0)
    core.flush(1.0)
    assert "198.51.100.20/32" in engine.table(IPV4_UNICAST)
    new = CONFIG.replace("max_prefixes: 10,", "max_prefixes: 3,").replace(
        '"2001:db8:244::/48 le 128", "198.51.100.0/24 le 32"]', '"2001:db8:244::/48 le 128"]'
    )
    core.handle(Reconfigure(parse_config(new, env={})), 2.0)
    core.flush(2.0)
    assert engine.table(IPV4_UNICAST) == {}
    assert len(core.for_upstreams.table(IPV4_UNICAST)) == 0


def test_decide_cleans_a_contested_entry_whose_other_holders_left_undecided() -> None:
    """The bulk path (no other source holds any prefix) must not leave a contested entry
    behind: the table's view would count it, and ``len`` would go wrong."""
    family, prefix = IPV4_UNICAST, _p("10.0.0.0/24")
    a, b = AdjRibIn(), AdjRibIn()
    loc = LocRib([a, b])
    path_a = Path(Source("a", False, 100, 0), PathAttributes(med=1), b"\x0a\x00\x00\x01")
    path_b = Path(Source("b", False, 50, 1), PathAttributes(med=2), b"\x0a\x00\x00\x02")
    loc.decide(family, a.set_many(family, [prefix], path_a), a, path_a)
    loc.decide(family, b.set_many(family, [prefix], path_b), b, path_b)
    assert prefix in loc.contested[family]
    b.remove_many(family, [prefix])  # and never decided (a caller's bug)
    changes = loc.decide(family, a.remove_many(family, [prefix]), a, None)
    assert changes == {prefix: None}
    assert loc.contested[family] == {}
    assert len(loc.table(family)) == 0 and loc.count() == 0
