"""The Prometheus collector over an in-memory core, client server and engine: the session
families for both roles, prefixes advertised per negotiated family, reloads; the exposition
passes ``promtool check metrics``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bgpmux.config import parse_config
from bgpmux.core import Core
from bgpmux.core.events import ClientEstablished, ClientUpdate, UpstreamEstablished
from bgpmux.core.port import UpstreamStatus
from bgpmux.engines.fake import FakeEngine
from bgpmux.metrics import BgpmuxCollector
from bgpmux.reloads import ReloadStats
from bgpmux.session import SessionStats, State
from bgpmux.session.facts import SessionFacts
from bgpmux.transport.listeners import ClientServer
from bgpmux.wire import IPV4_UNICAST, IPV6_UNICAST

from ..environment import unavailable
from .core_helpers import CONFIG, FakeLink, announce


class StatusEngine(FakeEngine):
    """A fake engine whose ``status`` carries facts and message counters."""

    def status(self) -> list[UpstreamStatus]:
        messages = SessionStats()
        messages.messages_sent.update(OPEN=1, KEEPALIVE=4, UPDATE=2)
        messages.messages_received.update(OPEN=1, KEEPALIVE=5, NOTIFICATION=1)
        messages.notifications_received[(6, 4)] = 1
        facts = SessionFacts(address="10.0.0.1", asn=65000, local_address="10.0.0.2")
        return [UpstreamStatus("tor", State.ESTABLISHED, facts=facts, messages=messages)]


def scrape(reloads: ReloadStats | None = None) -> tuple[str, dict[tuple[str, Any], float]]:
    config = parse_config(CONFIG, env={})
    engine = StatusEngine(["tor"])
    core = Core(config, engine, now=0.0)
    core.handle(UpstreamEstablished("tor", families=(IPV4_UNICAST,)), 0.0)
    core.handle(ClientEstablished("calico", FakeLink(), False), 0.0)
    update = announce("10.244.1.0/24", "10.244.2.0/24", "2001:db8:244::/64")
    core.handle(ClientUpdate("calico", update), 1.0)
    core.flush(1.0)
    assert len(core.for_upstreams.table(IPV6_UNICAST)) == 1  # in the table, not negotiated
    clients = ClientServer(config, runner=None)  # type: ignore[arg-type]
    registry = CollectorRegistry()
    registry.register(BgpmuxCollector(core, clients, engine, reloads))
    text = generate_latest(registry).decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, samples


def value(samples: dict[tuple[str, Any], float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_session_families_for_both_roles() -> None:
    _text, samples = scrape()
    tor = {"peer": "tor", "role": "upstream"}
    assert value(samples, "bgpmux_session_state", **tor, state="Established") == 1
    for state in ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm"):
        assert value(samples, "bgpmux_session_state", **tor, state=state) == 0
    calico = {"peer": "calico", "role": "client"}
    assert value(samples, "bgpmux_session_state", **calico, state="Idle") == 1
    assert value(samples, "bgpmux_peer_info", **tor, address="10.0.0.1", asn="65000") == 1
    # a client not connected yet: no source address known (it names no peer_address)
    assert value(samples, "bgpmux_peer_info", **calico, address="", asn="64512") == 1
    assert value(samples, "bgpmux_messages_sent_total", **tor, type="UPDATE") == 2
    assert value(samples, "bgpmux_messages_received_total", **tor, type="NOTIFICATION") == 1
    assert value(samples, "bgpmux_notifications_received_total", **tor, code="6", subcode="4") == 1
    assert value(samples, "bgpmux_messages_sent_total", **calico, type="OPEN") == 0


def test_prefixes_advertised_only_for_the_negotiated_family() -> None:
    _text, samples = scrape()
    assert value(samples, "bgpmux_prefixes_advertised", upstream="tor", family="ipv4-unicast") == 2
    assert value(samples, "bgpmux_prefixes_advertised", upstream="tor", family="ipv6-unicast") == 0


def test_reload_metrics() -> None:
    _text, samples = scrape(ReloadStats(failures=2, last_success=1.8e9))
    assert value(samples, "bgpmux_config_reload_failures_total") == 2
    assert value(samples, "bgpmux_config_last_reload_success_timestamp_seconds") == 1.8e9
    _text, samples = scrape()
    assert value(samples, "bgpmux_config_reload_failures_total") is None


def test_reload_stats() -> None:
    stats = ReloadStats(last_success=5.0)
    stats.failed()
    stats.succeeded(7.0)
    assert (stats.failures, stats.last_success) == (1, 7.0)


def test_exposition_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool is not installed (Debian package prometheus)")
    text, _samples = scrape(ReloadStats())
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_metric_is_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    text, _samples = scrape(ReloadStats())
    names = {family.name for family in text_string_to_metric_families(text)}
    names.add("bgpmux_route_propagation_seconds")  # registered by MetricsServer
    missing = sorted(name for name in names if f"`{name}" not in readme)
    assert not missing, f"README's Observability table lacks {missing}"


def test_readyz_waits_for_a_table_first_upstreams_session() -> None:
    """An engine that holds the table before the session opens (gobgpd) is not ready on its
    table's End-of-RIB alone: the session must be Established."""
    from bgpmux.metrics import MetricsServer

    config = parse_config(CONFIG, env={})
    core = Core(config, FakeEngine(["tor"]), now=0.0)
    clients = ClientServer(config, runner=None)  # type: ignore[arg-type]
    server = MetricsServer("127.0.0.1", 0, core, clients, core.engine)
    server.listening = True
    core.handle(UpstreamEstablished("tor", table_first=True), 0.0)
    core.handle_timer(30.0)  # initial_sync_timeout: the table and End-of-RIB go to the engine
    assert core.upstreams["tor"].eor_sent
    assert server.ready()[0] is False
    core.handle(UpstreamEstablished("tor"), 31.0)
    core.handle_timer(31.0)
    assert server.ready()[0] is True


def test_readyz_after_the_start_does_not_wait_for_a_tor() -> None:
    """A ToR that never answers (in maintenance) holds /readyz until the initial sync ends,
    not longer; one that goes down later does not make bgpmux unready."""
    from bgpmux.core.events import UpstreamDown
    from bgpmux.metrics import MetricsServer

    config = parse_config(CONFIG, env={})
    core = Core(config, FakeEngine(["tor"]), now=0.0)
    clients = ClientServer(config, runner=None)  # type: ignore[arg-type]
    server = MetricsServer("127.0.0.1", 0, core, clients, core.engine)
    assert server.ready() == (False, "listeners not bound")
    server.listening = True
    core.handle_timer(29.0)
    assert server.ready() == (False, "starting: no upstream established with its table sent yet")
    core.handle_timer(30.0)  # initial_sync_timeout: the clients get End-of-RIB without the ToR
    assert server.ready() == (True, "started; no upstream established now (see bgpmux status)")
    core.handle(UpstreamEstablished("tor"), 40.0)
    core.handle_timer(41.0)
    assert server.ready() == (True, "upstream tor established with its table sent")
    core.handle(UpstreamDown("tor", stale_time=120.0), 50.0)
    assert server.ready()[0] is True


def test_last_reload_successful() -> None:
    """1 until a reload fails, 0 from a refused or partly applied reload until one applies
    whole (whichever path reloaded: they all count in the same ``ReloadStats``)."""
    stats = ReloadStats()
    _text, samples = scrape(stats)
    assert value(samples, "bgpmux_config_last_reload_successful") == 1
    stats.failed()
    _text, samples = scrape(stats)
    assert value(samples, "bgpmux_config_last_reload_successful") == 0
    stats.succeeded(9.0)
    _text, samples = scrape(stats)
    assert value(samples, "bgpmux_config_last_reload_successful") == 1


def test_prefixes_rejected_exists_at_zero_for_every_reason() -> None:
    """A client's first refusal is a rise from 0, not a series appearing (alerts miss those)."""
    from bgpmux.policy.transforms import RejectReason

    _text, samples = scrape()
    for reason in RejectReason:
        assert (
            value(samples, "bgpmux_prefixes_rejected", client="metallb", reason=reason.value) == 0
        )


class ErrorEngine(FakeEngine):
    """A fake engine whose upstream ``tor`` is in ``state`` with ``last_error``."""

    state = State.ACTIVE
    last_error = ""

    def status(self) -> list[UpstreamStatus]:
        facts = SessionFacts(address="10.0.0.1", asn=65000, last_error=self.last_error)
        return [UpstreamStatus("tor", self.state, facts=facts)]


def test_is_open_error() -> None:
    from bgpmux.session.describe import down_words, is_open_error, notification_words
    from bgpmux.session.states import DownReason
    from bgpmux.wire import Notification

    bad_as = Notification(2, 2)
    assert is_open_error(notification_words(bad_as, True))
    assert is_open_error(notification_words(Notification(2, 7), False))
    assert is_open_error(down_words(DownReason.NOTIFICATION_RECEIVED, bad_as, "peer AS 65001"))
    assert not is_open_error(notification_words(Notification(4, 0), True))  # Hold Timer Expired
    assert not is_open_error(notification_words(Notification(6, 2), True))  # Cease/Shutdown
    assert not is_open_error("connect: Connection refused")
    assert not is_open_error("")


def test_readyz_not_ready_while_an_upstream_refuses_the_open() -> None:
    """An OPEN Message Error (here Bad Peer AS) is a configuration that does not match the
    ToR's: /readyz stays 503 past initial_sync_timeout, so that a rollout stops at the first
    node. Other errors (no answer, Hold Timer Expired) keep the timeout; an upstream
    Established again (its last error is history) does not hold it either."""
    from bgpmux.metrics import MetricsServer
    from bgpmux.session.describe import notification_words
    from bgpmux.wire import Notification

    config = parse_config(CONFIG, env={})
    engine = ErrorEngine(["tor"])
    core = Core(config, engine, now=0.0)
    clients = ClientServer(config, runner=None)  # type: ignore[arg-type]
    server = MetricsServer("127.0.0.1", 0, core, clients, engine)
    server.listening = True
    core.handle_timer(30.0)  # initial_sync_timeout passed
    engine.last_error = notification_words(Notification(2, 2), True)
    ok, why = server.ready()
    assert not ok
    assert why.startswith("upstream tor refused the session: received Open Message/Bad Peer As")
    engine.last_error = notification_words(Notification(2, 3), False)  # sent: Bad BGP Identifier
    assert server.ready()[0] is False
    for other in ("connect: Connection refused", notification_words(Notification(4, 0), True)):
        engine.last_error = other
        assert server.ready()[0] is True
    engine.last_error = notification_words(Notification(2, 2), True)
    engine.state = State.ESTABLISHED
    assert server.ready()[0] is True
