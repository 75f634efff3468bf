"""Prometheus metrics read from the core, the listeners and the engine at scrape time, and
/healthz, /readyz.

The HTTP server runs on the core's event loop and a scrape is collected without yielding to it,
so it reads the core's state between two events, with no locks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__
from .core import Core
from .core.port import Engine
from .core.views import advertised as advertised_count
from .policy.transforms import RejectReason
from .reloads import ReloadStats
from .session.describe import is_open_error
from .session.facts import SessionFacts
from .session.states import State
from .session.stats import SessionStats
from .transport.listeners import ClientServer

log = logging.getLogger("bgpmux.metrics")
PROPAGATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class _Sessions:
    """The per-session families: up, state, flaps, identity, messages and NOTIFICATIONs."""

    def __init__(self) -> None:
        peer_role = ["peer", "role"]
        self.up = GaugeMetricFamily(
            "bgpmux_session_up", "1 when the BGP session is Established", labels=peer_role
        )
        self.state = GaugeMetricFamily(
            "bgpmux_session_state",
            "1 for the session's current state (RFC 4271 §8.2.2 names), 0 for the others",
            labels=[*peer_role, "state"],
        )
        self.flaps = CounterMetricFamily(
            "bgpmux_session_flaps", "Established sessions that went down", labels=peer_role
        )
        self.info = GaugeMetricFamily(
            "bgpmux_peer_info",
            "Always 1: the peer's configured address (a client's source once connected) and AS",
            labels=[*peer_role, "address", "asn"],
        )
        self.sent = CounterMetricFamily(
            "bgpmux_messages_sent", "BGP messages sent", labels=[*peer_role, "type"]
        )
        self.received = CounterMetricFamily(
            "bgpmux_messages_received", "BGP messages received", labels=[*peer_role, "type"]
        )
        code = [*peer_role, "code", "subcode"]
        self.notif_sent = CounterMetricFamily(
            "bgpmux_notifications_sent", "NOTIFICATIONs sent", labels=code
        )
        self.notif_received = CounterMetricFamily(
            "bgpmux_notifications_received", "NOTIFICATIONs received", labels=code
        )

    def add(
        self,
        peer: str,
        role: str,
        state: State,
        flaps: int,
        facts: SessionFacts,
        messages: SessionStats | None,
    ) -> None:
        """One session's samples; ``messages`` None: its message counters are not known."""
        self.up.add_metric([peer, role], 1 if state is State.ESTABLISHED else 0)
        for each in State:
            self.state.add_metric([peer, role, each.value], 1 if each is state else 0)
        self.flaps.add_metric([peer, role], flaps)
        asn = "" if facts.asn is None else str(facts.asn)
        self.info.add_metric([peer, role, facts.address, asn], 1)
        if messages is None:
            return
        for kind, count in sorted(messages.messages_sent.items()):
            self.sent.add_metric([peer, role, kind], count)
        for kind, count in sorted(messages.messages_received.items()):
            self.received.add_metric([peer, role, kind], count)
        for (code, sub), count in sorted(messages.notifications_sent.items()):
            self.notif_sent.add_metric([peer, role, str(code), str(sub)], count)
        for (code, sub), count in sorted(messages.notifications_received.items()):
            self.notif_received.add_metric([peer, role, str(code), str(sub)], count)

    def families(self) -> tuple[Metric, ...]:
        return (
            self.up, self.state, self.flaps, self.info, self.sent, self.received,
            self.notif_sent, self.notif_received,
        )  # fmt: skip


class BgpmuxCollector(Collector):
    """Sessions, prefixes, conflicts and reloads, read from the core, the listeners, the engine
    and the daemon's ``ReloadStats`` (None: no reloads, as in tests without a daemon)."""

    def __init__(
        self,
        core: Core,
        clients: ClientServer,
        engine: Engine,
        reloads: ReloadStats | None = None,
    ) -> None:
        self.core = core
        self.clients = clients
        self.engine = engine
        self.reloads = reloads

    def collect(self) -> Iterator[Metric]:
        """Every bgpmux metric family, read now (the prometheus_client collector hook)."""
        core = self.core
        info = GaugeMetricFamily(
            "bgpmux_info", "bgpmux build and engine", labels=["version", "engine"]
        )
        info.add_metric([__version__, self.engine.name], 1)
        yield info

        sessions = _Sessions()
        for session in self.clients.sessions():
            sessions.add(
                session.name,
                "client",
                session.state,
                core.clients[session.name].flaps,
                session.facts,
                self.clients.totals(session.name),
            )
        for status in self.engine.status():
            upstream = core.upstreams.get(status.name)
            flaps = upstream.flaps if upstream else 0
            sessions.add(
                status.name, "upstream", status.state, flaps, status.facts, status.messages
            )
        yield from sessions.families()

        labels = ["client"]
        received_p = GaugeMetricFamily(
            "bgpmux_prefixes_received", "Prefixes a client announces now", labels=labels
        )
        accepted = GaugeMetricFamily(
            "bgpmux_prefixes_accepted", "Prefixes accepted by import policy", labels=labels
        )
        stale = GaugeMetricFamily(
            "bgpmux_prefixes_stale",
            "Accepted prefixes kept stale (graceful restart)",
            labels=labels,
        )
        rejected = GaugeMetricFamily(
            "bgpmux_prefixes_rejected",
            "Prefixes refused by import policy",
            labels=["client", "reason"],
        )
        cutoffs = CounterMetricFamily(
            "bgpmux_max_prefixes_cutoffs",
            "Sessions closed for exceeding max_prefixes",
            labels=labels,
        )
        reached = CounterMetricFamily(
            "bgpmux_max_prefixes_reached",
            "Times a client reached max_prefixes, whatever its max_prefixes_action",
            labels=labels,
        )
        blocked = CounterMetricFamily(
            "bgpmux_max_prefixes_blocked",
            "Prefixes dropped because the client was at max_prefixes (action block)",
            labels=labels,
        )
        for name, client in core.clients.items():
            channel = client.channel
            reasons = Counter(reason.value for reason, _path in channel.rejected.values())
            # Every reason from the start, at 0: the first refusal is then a rise that
            # alerts see, not a series appearing (README "Alerts").
            reasons.update({reason.value: 0 for reason in RejectReason})
            received_p.add_metric([name], channel.rib.count() + len(channel.rejected))
            accepted.add_metric([name], channel.rib.count())
            stale.add_metric([name], channel.rib.stale_count())
            for reason, count in sorted(reasons.items()):
                rejected.add_metric([name, reason], count)
            cutoffs.add_metric([name], channel.cutoffs)
            reached.add_metric([name], channel.limit_hits)
            blocked.add_metric([name], channel.blocked)
        yield from (received_p, accepted, stale, rejected, cutoffs, reached, blocked)

        advertised = GaugeMetricFamily(
            "bgpmux_prefixes_advertised",
            "Prefixes advertised to an upstream",
            labels=["upstream", "family"],
        )
        learned = GaugeMetricFamily(
            "bgpmux_upstream_prefixes_received",
            "Prefixes an upstream sent us",
            labels=["upstream", "family"],
        )
        upstream_stale = GaugeMetricFamily(
            "bgpmux_upstream_prefixes_stale",
            "Prefixes from an upstream kept stale through its graceful restart (RFC 4724)",
            labels=["upstream"],
        )
        looped = GaugeMetricFamily(
            "bgpmux_upstream_prefixes_rejected",
            "Prefixes from an upstream dropped (as_loop: the node AS is in the AS path;"
            " not_in_accept_list: refused by its accept list)",
            labels=["upstream", "reason"],
        )
        up_blocked = CounterMetricFamily(
            "bgpmux_upstream_max_prefixes_blocked",
            "New prefixes from an upstream dropped because it was at max_prefixes",
            labels=["upstream"],
        )
        too_large = GaugeMetricFamily(
            "bgpmux_prefixes_too_large",
            "Routes withheld from a peer (and withdrawn from it): with their attributes they fit"
            " in no UPDATE of the session's maximum message size",
            labels=["peer", "role"],
        )
        withheld = core.exporter.too_large
        for name, upstream in core.upstreams.items():
            looped.add_metric([name, "as_loop"], len(upstream.channel.looped))
            imports = upstream.channel.imports
            reasons = Counter(reason.value for reason, _path in imports.rejected.values())
            for reason, count in sorted(reasons.items()):
                looped.add_metric([name, reason], count)
            up_blocked.add_metric([name], imports.blocked)
            upstream_stale.add_metric([name], upstream.channel.rib.stale_count())
            held = withheld.get(name, set())
            too_large.add_metric([name, "upstream"], len(held))
            for family in core.families:
                advertised.add_metric([name, str(family)], advertised_count(core, name, family))
                learned.add_metric([name, str(family)], upstream.channel.rib.count_family(family))
        for name in core.clients:
            too_large.add_metric([name, "client"], len(withheld.get(name, ())))
        yield from (advertised, learned, upstream_stale, looped, up_blocked, too_large)

        conflicts = GaugeMetricFamily(
            "bgpmux_conflicts", "Prefixes announced by more than one client now"
        )
        conflicts.add_metric([], len(core.for_upstreams.conflicts))
        conflicts_total = CounterMetricFamily("bgpmux_conflicts", "Conflicts seen since start")
        conflicts_total.add_metric([], core.for_upstreams.conflicts_total)
        restarts = CounterMetricFamily(
            "bgpmux_engine_restarts", "Times the engine restarted", labels=["engine"]
        )
        restarts.add_metric([self.engine.name], self.engine.restarts)
        refused = CounterMetricFamily(
            "bgpmux_connections_refused",
            "Client connections refused: no client for the source, client held down after "
            "max_prefixes, too many connections before Established, or a second session",
        )
        refused.add_metric([], self.clients.refused)
        idle_hold = GaugeMetricFamily(
            "bgpmux_client_idle_hold_seconds",
            "Seconds a client stays refused after passing max_prefixes (+Inf: until a reload)",
            labels=["client"],
        )
        now = time.monotonic()  # the loop's clock
        for session in self.clients.sessions():
            idle_hold.add_metric([session.name], self.clients.idle_hold(session.name, now))
        yield from (conflicts, restarts, refused, idle_hold)
        yield _renamed(conflicts_total, "bgpmux_conflicts_seen")
        if self.reloads is not None:
            yield from _reload_metrics(self.reloads)


def _reload_metrics(reloads: ReloadStats) -> Iterator[Metric]:
    failures = CounterMetricFamily(
        "bgpmux_config_reload_failures",
        "Configuration reloads (SIGHUP, API) refused as invalid or not applied whole",
    )
    failures.add_metric([], reloads.failures)
    last = GaugeMetricFamily(
        "bgpmux_config_last_reload_success_timestamp_seconds",
        "Unix time of the last configuration applied whole (at start, then each reload)",
    )
    last.add_metric([], reloads.last_success)
    # As Prometheus's own prometheus_config_last_reload_successful: it stays 0 while the file
    # is not applied, where the failure counter's increase ends with its range.
    successful = GaugeMetricFamily(
        "bgpmux_config_last_reload_successful",
        "1 when the last reload (SIGHUP, API or watcher) applied the file whole, 0 when it was"
        " refused or not applied whole (1 before any reload)",
    )
    successful.add_metric([], 1 if reloads.last_successful else 0)
    yield from (failures, last, successful)


def _renamed(metric: CounterMetricFamily, name: str) -> CounterMetricFamily:
    out = CounterMetricFamily(name, metric.documentation)
    for sample in metric.samples:
        out.add_metric([], sample.value)
    return out


class MetricsServer:
    """A small HTTP/1.0 server for /metrics, /healthz and /readyz on ``host``:``port``; it also
    gives the core its propagation histogram. The daemon sets ``listening`` once the client
    listeners are bound, and ``failure`` when a vital task ended."""

    def __init__(
        self,
        host: str,
        port: int,
        core: Core,
        clients: ClientServer,
        engine: Engine,
        reloads: ReloadStats | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.core = core
        self.engine = engine
        self.registry = CollectorRegistry()
        self.registry.register(BgpmuxCollector(core, clients, engine, reloads))
        self.propagation = Histogram(
            "bgpmux_route_propagation_seconds",
            "From a client UPDATE received to its changes handed to the engine",
            buckets=PROPAGATION_BUCKETS,
            registry=self.registry,
        )
        core.propagation_observer = self.propagation.observe
        self.listening = False
        self.failure: str | None = None  # why a vital task ended; /healthz fails with it
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        """Start listening; raises OSError when the address cannot be bound."""
        self.server = await asyncio.start_server(self._serve, self.host, self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def ready(self) -> tuple[bool, str]:
        """(ready, why) for /readyz: ready once the listeners are bound and bgpmux's start is
        over: some upstream is Established with its table and End-of-RIB sent (an engine that
        holds the table before the session opens, ``table_first``, is not Established yet), or
        the clients were given their End-of-RIB without one (``node.initial_sync_timeout``
        passed: no ToR answered). From then on upstreams coming and going (a ToR in
        maintenance) leave it ready, so that a DaemonSet rollout does not wait on them; the
        session metrics and alerts report them. But never ready while an upstream that is not
        Established last ended on an OPEN Message Error NOTIFICATION, sent or received
        (``is_open_error``: bad peer AS, BGP identifier, capability...): the ToR answered and
        the two configurations disagree, which a rollout would carry to every node."""
        if not self.listening:
            return False, "listeners not bound"
        for status in self.engine.status():
            if status.state is not State.ESTABLISHED and is_open_error(status.facts.last_error):
                return False, (
                    f"upstream {status.name} refused the session: {status.facts.last_error}"
                    f" (see bgpmux status {status.name})"
                )
        for upstream in self.core.upstreams.values():
            if upstream.up and upstream.established_at is not None and upstream.eor_sent:
                return True, f"upstream {upstream.name} established with its table sent"
        if self.core.sync.upstreams_synced:
            return True, "started; no upstream established now (see bgpmux status)"
        return False, "starting: no upstream established with its table sent yet"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) >= 2 else ""
            if path == "/metrics":
                status, body, ctype = (
                    "200 OK",
                    generate_latest(self.registry),
                    "text/plain; version=0.0.4",
                )
            elif path == "/healthz":
                if self.failure is None:
                    status, body, ctype = "200 OK", b"ok\n", "text/plain"
                else:
                    status = "503 Service Unavailable"
                    body, ctype = (self.failure + "\n").encode(), "text/plain"
            elif path == "/readyz":
                ok, why = self.ready()
                status = "200 OK" if ok else "503 Service Unavailable"
                body, ctype = (why + "\n").encode(), "text/plain"
            else:
                status, body, ctype = "404 Not Found", b"not found\n", "text/plain"
            head = (
                f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        except Exception:
            log.exception("serving %s failed", self.port)
        finally:
            writer.close()
