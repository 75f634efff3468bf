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
from .session.states import State
from .transport.listeners import ClientServer

log = logging.getLogger("bgpmux.metrics")
PROPAGATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class BgpmuxCollector(Collector):
    """Sessions, prefixes and conflicts, read from the core, the listeners and the engine."""

    def __init__(self, core: Core, clients: ClientServer, engine: Engine) -> None:
        self.core = core
        self.clients = clients
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        """Every bgpmux metric family, read now (the prometheus_client collector hook)."""
        core = self.core
        info = GaugeMetricFamily(
            "bgpmux_info", "bgpmux build and engine", labels=["version", "engine"]
        )
        info.add_metric([__version__, self.engine.name], 1)
        yield info

        up = GaugeMetricFamily(
            "bgpmux_session_up", "1 when the BGP session is Established", labels=["peer", "role"]
        )
        flaps = CounterMetricFamily(
            "bgpmux_session_flaps", "Established sessions that went down", labels=["peer", "role"]
        )
        sent = CounterMetricFamily(
            "bgpmux_messages_sent", "BGP messages sent", labels=["peer", "role", "type"]
        )
        received = CounterMetricFamily(
            "bgpmux_messages_received", "BGP messages received", labels=["peer", "role", "type"]
        )
        notif_sent = CounterMetricFamily(
            "bgpmux_notifications_sent",
            "NOTIFICATIONs sent",
            labels=["peer", "role", "code", "subcode"],
        )
        notif_received = CounterMetricFamily(
            "bgpmux_notifications_received",
            "NOTIFICATIONs received",
            labels=["peer", "role", "code", "subcode"],
        )
        for session in self.clients.sessions():
            up.add_metric([session.name, "client"], 1 if session.state is State.ESTABLISHED else 0)
            flaps.add_metric([session.name, "client"], core.clients[session.name].flaps)
            totals = self.clients.totals(session.name)
            for kind, count in sorted(totals.messages_sent.items()):
                sent.add_metric([session.name, "client", kind], count)
            for kind, count in sorted(totals.messages_received.items()):
                received.add_metric([session.name, "client", kind], count)
            for (code, sub), count in sorted(totals.notifications_sent.items()):
                notif_sent.add_metric([session.name, "client", str(code), str(sub)], count)
            for (code, sub), count in sorted(totals.notifications_received.items()):
                notif_received.add_metric([session.name, "client", str(code), str(sub)], count)
        for status in self.engine.status():
            up.add_metric([status.name, "upstream"], 1 if status.state is State.ESTABLISHED else 0)
            upstream = core.upstreams.get(status.name)
            flaps.add_metric([status.name, "upstream"], upstream.flaps if upstream else 0)
        yield from (up, flaps, sent, received, notif_sent, notif_received)

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
            held = withheld.get(name, set())
            too_large.add_metric([name, "upstream"], len(held))
            for family in core.families:
                table = core.for_upstreams.table(family)
                count = len(table) - sum(1 for f, _p in held if f == family)
                advertised.add_metric([name, str(family)], count if upstream.up else 0)
                learned.add_metric([name, str(family)], upstream.channel.rib.count_family(family))
        for name in core.clients:
            too_large.add_metric([name, "client"], len(withheld.get(name, ())))
        yield from (advertised, learned, looped, up_blocked, too_large)

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
        self, host: str, port: int, core: Core, clients: ClientServer, engine: Engine
    ) -> None:
        self.host, self.port = host, port
        self.core = core
        self.registry = CollectorRegistry()
        self.registry.register(BgpmuxCollector(core, clients, engine))
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
        """(ready, why) for /readyz: ready once the listeners are bound and some upstream is
        Established with its table and End-of-RIB sent."""
        if not self.listening:
            return False, "listeners not bound"
        for upstream in self.core.upstreams.values():
            if upstream.up and upstream.eor_sent:
                return True, f"upstream {upstream.name} established with its table sent"
        return False, "no upstream established with its table sent"

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
