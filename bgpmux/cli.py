"""The ``bgpmux`` command: run, check-config, version here; status, routes, events and reload
(on the API) in ``show``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from .config import Config, ConfigError, load_config
from .gateway import default_gateway
from .placement import Placement, place
from .secrets import check_files
from .show import add_commands


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

    add_commands(add)
    add("version", cmd_version, "print the bgpmux version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``bgpmux`` entry point (``argv`` without the program name; default sys.argv);
    returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except BrokenPipeError:  # `bgpmux routes | head`: the reader left, nothing to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit must not fail again
        return 0
    return result
