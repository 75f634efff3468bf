"""The CLI's commands on the API: ``status``, ``routes``, ``events``, ``reload``; tables for
people, ``-o json`` / ``-o yaml`` for programs (the rows of ``api.convert``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from .api.client import ApiClient, APIError
from .config import Api, ConfigError, load_config, parse_unix_listen
from .config_types import parse_endpoint

STATUS_COLUMNS = ("name", "role", "address", "asn", "state", "since",
                  "received", "accepted", "rejected", "advertised")  # fmt: skip
HEADERS = {"asn": "AS", "next_hop": "NEXT HOP", "as_path": "AS PATH",
           "large_communities": "LARGE COMMUNITIES"}  # fmt: skip
ROUTE_COLUMNS = ("prefix", "next_hop", "as_path", "med", "communities", "large_communities")


def api_target(args: argparse.Namespace) -> Path | str | None:
    """Where to call the API: ``--api`` (``unix:PATH`` or a loopback ``host:port``), else the
    ``api.listen`` of ``-c FILE``, else the default socket. None (after saying why on stderr)
    when neither can be used."""
    if args.api is not None:
        if args.api.startswith("unix:"):
            try:
                return parse_unix_listen(args.api)
            except ValueError as e:
                print(f"bgpmux: --api: {e}", file=sys.stderr)
                return None
        try:
            return str(parse_endpoint(args.api))
        except ValueError as e:
            print(f"bgpmux: --api: {e} (give unix:/path or host:port)", file=sys.stderr)
            return None
    if args.config is not None:
        try:
            return load_config(args.config).api.path
        except ConfigError as e:
            for where, message in e.errors:
                print(f"{args.config}: {where}: {message}", file=sys.stderr)
            return None
    return Api().path


def _call(args: argparse.Namespace, what: Callable[[ApiClient], Any]) -> Any:
    """``what`` on a client of the API; prints the error and returns None when it fails."""
    target = api_target(args)
    if target is None:
        return None
    try:
        with ApiClient(target) as client:
            return what(client)
    except APIError as e:
        print(f"bgpmux: {e}", file=sys.stderr)
        return None


def emit(data: Any, output: str, table: Callable[[], str]) -> None:
    """Print ``data`` as JSON or YAML, or ``table()`` for ``-o table``."""
    if output == "json":
        print(json.dumps(data, indent=2))
    elif output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end="")
    else:
        print(table())


def cell(value: Any) -> str:
    """One table cell: lists space-separated, None and empty as "-"."""
    if value is None or value == [] or value == "":
        return "-"
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as left-aligned text columns under upper-case headers."""
    cells = [[HEADERS.get(c, c.upper()) for c in columns]]
    cells += [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def since_text(at: float | None, now: float | None = None) -> str:
    """A Unix time as birdc shows "since": the local time of day within the last day, else
    the date; "-" for None."""
    if at is None:
        return "-"
    now = time.time() if now is None else now
    fmt = "%H:%M:%S" if now - at < 86400 else "%Y-%m-%d"
    return time.strftime(fmt, time.localtime(at))


def duration(seconds: float | None) -> str:
    """Seconds as "1d02h03m", "2h03m04s", "3m04s" or "4s"; "-" for None."""
    if seconds is None:
        return "-"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def status_table(peers: Sequence[dict[str, Any]]) -> str:
    """One line per peer, like ``birdc show protocols``."""
    rows = [{**p, "since": since_text(p.get("since"))} for p in peers]
    return format_table(rows, STATUS_COLUMNS)


def peer_detail(peer: dict[str, Any]) -> str:
    """One peer's detail view, like ``birdc show protocols all NAME``."""
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(peer["rejected_by_reason"].items()))
    rejected = f"{peer['rejected']} rejected" + (f" ({reasons})" if reasons else "")
    timers = "-"
    if peer.get("hold_time") is not None:
        timers = f"hold time {peer['hold_time']} s, keepalive {cell(peer.get('keepalive'))} s"
    error = cell(peer.get("last_error"))
    if peer.get("last_error_at") is not None:
        error += (
            f" (at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(peer['last_error_at']))})"
        )
    state = peer["state"]
    if peer.get("since") is not None:
        state += f" since {since_text(peer['since'])} ({duration(peer.get('uptime'))})"
    lines = [
        ("Role", peer["role"]),
        ("State", state),
        ("Address", f"{cell(peer.get('address'))}, AS {cell(peer.get('asn'))}"),
        ("Local address", cell(peer.get("local_address"))),
        ("Capabilities", cell(peer.get("capabilities"))),
        ("Timers", timers),
        ("Graceful restart", cell(peer.get("graceful_restart"))),
        ("Last error", error),
        ("Routes", f"{peer['received']} received, {peer['accepted']} accepted, {rejected}, "
                   f"{peer['stale']} stale, {peer['advertised']} advertised"),
        ("Flaps", str(peer.get("flaps", 0))),
    ]  # fmt: skip
    if peer.get("detail"):
        lines.append(("Engine", peer["detail"]))
    width = max(len(k) for k, _v in lines) + 2
    return "\n".join([peer["name"], *(f"  {k + ':':<{width}}{v}" for k, v in lines)])


def cmd_status(args: argparse.Namespace) -> int:
    """``bgpmux status [PEER] [-o json|yaml]``: every session, one line each, or one peer's
    detail; 1 when the API cannot be reached or has no such peer."""
    if args.peer:
        peer = _call(args, lambda c: c.peer(args.peer))
        if peer is None:
            return 1
        emit(peer, args.output, lambda: peer_detail(peer))
        return 0
    peers = _call(args, lambda c: c.peers())
    if peers is None:
        return 1
    emit(peers, args.output, lambda: status_table(peers))
    return 0


def route_status(row: dict[str, Any]) -> str:
    """What became of a received route: "rejected: REASON", "best", "stale", or ""."""
    if row.get("reason"):
        return f"rejected: {row['reason']}"
    marks = [m for m in ("best", "stale") if row.get(m)]
    return ", ".join(marks)


def routes_columns(args: argparse.Namespace) -> tuple[str, ...]:
    if args.client or (args.rejected and not args.received):
        return ("client", *ROUTE_COLUMNS, "status")
    if args.received:
        return ("upstream", *ROUTE_COLUMNS, "status")
    return ("upstream", *ROUTE_COLUMNS)


def cmd_routes(args: argparse.Namespace) -> int:
    """``bgpmux routes``: what goes to each upstream as sent (``--upstream``, ``--prefix``,
    ``--family``); ``--client NAME`` what a client sent, refused ones marked; ``--rejected``
    only refused ones; ``--received NAME`` what an upstream sent. 1 when the API fails."""
    if args.rejected and args.upstream:
        print("bgpmux: --rejected shows refused prefixes: use it alone, with --client or with"
              " --received", file=sys.stderr)  # fmt: skip
        return 1
    filters = {"client": args.client, "received_from": args.received, "upstream": args.upstream,
               "prefix": args.prefix, "family": args.family, "rejected": args.rejected,
               "stale": args.stale}  # fmt: skip
    rows = _call(args, lambda c: c.routes(**filters))
    if rows is None:
        return 1
    columns = routes_columns(args)
    shown = [{**r, "status": route_status(r)} for r in rows]
    emit(rows, args.output, lambda: format_table(shown, columns))
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    """``bgpmux events``: the event stream, one JSON object a line (``-o yaml``: one YAML
    document each), until interrupted (or ``--seconds``)."""
    try:
        done = _call(args, lambda c: _print_events(c, args.seconds, args.output))
    except KeyboardInterrupt:
        return 0
    return 0 if done else 1


def _print_events(client: ApiClient, seconds: float | None, output: str) -> bool:
    for event in client.events(timeout=seconds):
        if output == "yaml":
            print(yaml.safe_dump(event, sort_keys=False, explicit_start=True), end="", flush=True)
        else:
            print(json.dumps(event), flush=True)
    return True


def cmd_reload(args: argparse.Namespace) -> int:
    """``bgpmux reload``: re-read the configuration file, as SIGHUP; 1 with each error (its
    field path) when it was refused."""
    result = _call(args, lambda c: c.reload())
    if result is None:
        return 1

    def text() -> str:
        if not result["ok"]:
            return "\n".join(["not reloaded:"] + [
                f"  {e['field']}: {e['message']}" if e["field"] else f"  {e['message']}"
                for e in result["errors"]])  # fmt: skip
        lines = ["reloaded"]
        lines += [f"  needs a restart: {change}" for change in result["needs_restart"]]
        return "\n".join(lines)

    emit(result, args.output, text)
    return 0 if result["ok"] else 1


def add_commands(add: Callable[[str, Callable[[argparse.Namespace], int], str], Any]) -> None:
    """Add status, routes, events and reload to the parser (``add(name, handler, help)``
    returns a subparser)."""
    status = add("status", cmd_status, "show the sessions of a running bgpmux")
    status.add_argument("peer", nargs="?", metavar="PEER", help="one peer's detail")
    routes = add("routes", cmd_routes, "show what goes to each upstream, as sent")
    events = add("events", cmd_events, "follow session, route, conflict and reload events")
    events.add_argument("--seconds", type=float, help="stop after this long")
    reload = add("reload", cmd_reload, "re-read the configuration file (as SIGHUP)")
    for p in (status, routes, events, reload):
        p.add_argument("--api", metavar="unix:PATH|HOST:PORT",
                       help=f"the API (default: from -c, else {Api().listen})")  # fmt: skip
        p.add_argument("-c", "--config", metavar="FILE", help="take the API socket from this file")
    for p in (status, routes, reload):
        p.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    events.add_argument("-o", "--output", choices=("json", "yaml"), default="json")
    which = routes.add_mutually_exclusive_group()
    which.add_argument("--upstream", metavar="NAME", help="only what goes to this upstream")
    which.add_argument("--client", metavar="NAME", help="what this client sent, refused marked")
    which.add_argument("--received", metavar="NAME", help="what this upstream sent")
    routes.add_argument("--rejected", action="store_true", help="only the refused prefixes")
    routes.add_argument("--prefix", metavar="P", help="this prefix, or the prefixes holding P")
    routes.add_argument("--family", choices=("ipv4", "ipv6", "ipv4-unicast", "ipv6-unicast"))
    routes.add_argument("--stale", action="store_true", help="only stale routes")
