"""The ``bgpmux`` command: run, check-config, status, routes, version."""

from __future__ import annotations

import argparse
import importlib
import json
import socket
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .config import Api, Config, ConfigError, load_config, parse_unix_listen
from .gateway import default_gateway
from .placement import Placement, place
from .secrets import check_files

API_TIMEOUT = 10.0  # seconds each step of the exchange (connect, send, each read) may take
MAX_REPLY = 512 * 1024 * 1024  # a routes reply for a large table


def _load(path: str) -> Config | None:
    """Load and fully check a config; print every error as ``FILE: path: message``."""
    try:
        config = load_config(path)
        check_files(config)
    except ConfigError as e:
        _print_errors(path, e)
        return None
    return config


def _print_errors(path: str, error: ConfigError) -> None:
    for where, message in error.errors:
        print(f"{path}: {where}: {message}" if where else f"{path}: {message}", file=sys.stderr)


def _place(path: str) -> Placement | None:
    """``_load``, then which upstreams apply on this node, at which address
    (``placement.place`` with this network namespace's default routes)."""
    config = _load(path)
    if config is None:
        return None
    try:
        return place(config, default_gateway)
    except ConfigError as e:
        _print_errors(path, e)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    """``bgpmux run -c FILE``: check the config, set up logging and run the daemon with the
    upstreams that apply on this node; returns the exit status (1 for a bad config)."""
    placement = _place(args.config)
    if placement is None:
        return 1
    config = placement.config
    from .logs import setup_logging

    setup_logging(config.log.level, config.log.format)
    # Imported late: the daemon pulls in the engines and the asyncio machinery.
    daemon = importlib.import_module("bgpmux.daemon")
    exit_code: int = daemon.run(config, args.config, placement)
    return exit_code


def cmd_check_config(args: argparse.Namespace) -> int:
    """``bgpmux check-config -c FILE``: 0 and a summary when the config and its files are
    good on this node, with a line per upstream that says whether it applies here (at which
    address) and why; else 1 with every error on stderr."""
    placement = _place(args.config)
    if placement is None:
        return 1
    config = placement.config
    upstreams = _count(len(placement.upstreams), "upstream")
    if placement.skipped:
        upstreams += f" ({len(config.upstreams)} on this node)"
    print(f"OK: {upstreams}, {_count(len(config.clients), 'client')}, engine {config.engine}")
    for placed in placement.upstreams:
        if placed.applies:
            print(f"  upstream {placed.name}: applies, at {placed.address} ({placed.why})")
        else:
            print(f"  upstream {placed.name}: does not apply ({placed.why})")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def cmd_version(args: argparse.Namespace) -> int:
    """``bgpmux version``: print the installed package's version; returns 0."""
    try:
        version = metadata.version("bgpmux")
    except metadata.PackageNotFoundError:
        version = "unknown (not installed)"
    print(f"bgpmux {version}")
    return 0


# --- the local API client ----------------------------------------------------------------------


class APIError(Exception):
    """The API could not be reached or gave no usable reply; the message says why."""


def _api_path(args: argparse.Namespace) -> Path | None:
    if args.api is not None:
        try:
            return parse_unix_listen(args.api)
        except ValueError as e:
            print(f"--api: {e}", file=sys.stderr)
            return None
    if args.config is not None:
        config = _load(args.config)
        return config.api.path if config is not None else None
    return Api().path


def api_request(path: Path, request: dict[str, Any], timeout: float = API_TIMEOUT) -> Any:
    """Send one JSON line to the API socket at ``path`` and return the decoded one-line reply
    (``timeout`` in seconds per socket step). Raises APIError."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply = bytearray()
            while b"\n" not in reply and len(reply) < MAX_REPLY:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
    except FileNotFoundError:
        raise APIError(f"no API socket at {path}: is bgpmux running?") from None
    except ConnectionRefusedError:
        raise APIError(f"nothing is listening on {path}: is bgpmux running?") from None
    except PermissionError:
        raise APIError(f"permission denied on {path} (run as root or the bgpmux user)") from None
    except TimeoutError:
        raise APIError(f"no reply from {path} within {timeout:g} s") from None
    except OSError as e:
        raise APIError(f"{path}: {e.strerror or e}") from None
    line = bytes(reply).split(b"\n", 1)[0]
    if not line:
        raise APIError(f"{path}: the daemon closed the connection without replying")
    try:
        return json.loads(line)
    except ValueError:
        raise APIError(f"{path}: the reply is not JSON: {line[:200]!r}") from None


def _uptime(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-" if value is None else str(value)
    total = int(value)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:02d}s"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as left-aligned text columns under upper-case headers; a missing or None value
    shows as "-"."""
    cells = [[c.upper() for c in columns]]
    cells += [["-" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def _rows(reply: Any, key: str) -> list[dict[str, Any]] | None:
    """The list of row objects in ``reply`` (a bare list or ``{key: [...]}``), else None."""
    rows = reply.get(key) if isinstance(reply, dict) else reply
    if isinstance(rows, list) and all(isinstance(r, dict) for r in rows):
        return rows
    return None


def _call_api(args: argparse.Namespace, request: dict[str, Any]) -> Any:
    path = _api_path(args)
    if path is None:
        return None
    try:
        reply = api_request(path, request)
    except APIError as e:
        print(f"bgpmux: {e}", file=sys.stderr)
        return None
    if isinstance(reply, dict) and reply.get("error"):
        print(f"bgpmux: {reply['error']}", file=sys.stderr)
        return None
    return reply


def cmd_status(args: argparse.Namespace) -> int:
    """``bgpmux status``: the sessions as a table (peer, role, state, uptime, prefixes);
    returns 1 when the API fails or answers with an error."""
    reply = _call_api(args, {"cmd": "status"})
    if reply is None:
        return 1
    rows = _rows(reply, "peers")
    if rows is None:
        print(json.dumps(reply, indent=2, sort_keys=True))
        return 0
    rows = [{**r, "uptime": _uptime(r.get("uptime"))} for r in rows]
    print(format_table(rows, ("peer", "role", "state", "uptime", "prefixes")))
    return 0


def cmd_routes(args: argparse.Namespace) -> int:
    """``bgpmux routes [--client NAME | --upstream NAME] [--rejected]``: the routes (with
    ``--rejected``: the prefixes that peer's import policy refused) as a table, or as JSON when
    there are none; returns 1 when the API fails or answers with an error."""
    if args.rejected and not (args.client or args.upstream):
        print("bgpmux: --rejected needs --client or --upstream", file=sys.stderr)
        return 1
    reply = _call_api(args, {"cmd": "routes", "client": args.client, "upstream": args.upstream})
    if reply is None:
        return 1
    key = "rejected" if args.rejected else "routes"
    rows = _rows(reply, key)
    if not rows:
        shown = reply.get(key, []) if args.rejected and isinstance(reply, dict) else reply
        print(json.dumps(shown, indent=2, sort_keys=True))
        return 0
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print(format_table(rows, columns))
    return 0


# --- argument parsing --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand sets ``handler`` to its ``cmd_*`` function."""
    parser = argparse.ArgumentParser(
        prog="bgpmux", description="Per-node BGP multiplexer for Calico, MetalLB and friends."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    for name, handler, help in (
        ("run", cmd_run, "run the multiplexer"),
        ("check-config", cmd_check_config, "validate a configuration file and exit"),
    ):
        add(name, handler, help).add_argument(
            "-c", "--config", required=True, metavar="FILE", help="configuration file (YAML)"
        )

    status = add("status", cmd_status, "show the sessions of a running bgpmux")
    routes = add("routes", cmd_routes, "show the routes of a running bgpmux")
    for p in (status, routes):
        p.add_argument(
            "--api",
            metavar="unix:PATH",
            help=f"API socket (default: from -c, else {Api().listen})",
        )
        p.add_argument("-c", "--config", metavar="FILE", help="take the API socket from this file")
    which = routes.add_mutually_exclusive_group()
    which.add_argument("--client", metavar="NAME", help="routes received from this client")
    which.add_argument("--upstream", metavar="NAME", help="routes received from this upstream")
    routes.add_argument(
        "--rejected", action="store_true", help="the prefixes its import policy refused"
    )

    add("version", cmd_version, "print the bgpmux version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``bgpmux`` entry point (``argv`` without the program name; default sys.argv);
    returns the exit status."""
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result
