"""The core's side of the upstreams' import policy (``accept``, ``max_prefixes``): building
each upstream's channel with it, logging what it refused, and applying a reloaded one."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..config import Upstream
from ..policy.channels import UpstreamChannel
from ..policy.upstream_import import UpstreamImported
from ..rib.paths import Path
from ..wire.constants import Family
from ..wire.prefix import Prefix, PrefixText
from .peers import UpstreamPeer

if TYPE_CHECKING:
    from .routing import Core

log = logging.getLogger("bgpmux.core")


def upstream_channel(config: Upstream, order: int, node_asn: int) -> UpstreamChannel:
    """The channel of the upstream ``config``, ``order``-th in the config (its routes rank by
    it), with its import policy; eBGP when its AS differs from ``node_asn``."""
    ebgp = config.asn != node_asn
    return UpstreamChannel(config.name, order, ebgp, config.allow_node_as, node_asn, config)


def upstream_imported(
    core: Core,
    upstream: UpstreamPeer,
    imported: UpstreamImported,
    old: Mapping[Family, Mapping[Prefix, Path]] | None = None,
) -> None:
    """Log what an upstream's import policy refused and a limit it reached, and decide the
    changed prefixes in the clients' Loc-RIB (with ``old``, the upstream's routes before a
    reload, whose changes carry no path: ``AdjRibIn.tables``, read before the reload)."""
    for family, prefix, reason in imported.rejected:
        core._log_batch(
            logging.INFO, upstream.name, "rejected %s: %s", PrefixText(family, prefix),
            reason.value,
        )  # fmt: skip
    if imported.limit_reached is not None:
        log.warning(
            "reached max_prefixes (%d): new prefixes over it are dropped, the session stays",
            imported.limit_reached,
            extra={"peer": upstream.name},
        )
    rib = upstream.channel.rib
    for family, prefixes, path in imported.changes:
        if prefixes:
            before = old.get(family, {}) if old is not None else None
            core._decide(core.for_clients, family, prefixes, rib, path, before)


def apply_upstream_policies(core: Core, configs: Sequence[Upstream]) -> None:
    """A reload: each upstream in ``configs`` (those whose session identity is unchanged)
    whose ``accept`` or ``max_prefixes`` changed has every route it sent judged again."""
    for config in configs:
        upstream = core.upstreams[config.name]
        imports = upstream.channel.imports
        accept = imports.accept.rules if imports.accept is not None else None
        if (accept, imports.max_prefixes) == (config.accept, config.max_prefixes):
            continue
        log.info("applying the new import policy", extra={"peer": upstream.name})
        rib = upstream.channel.rib
        old = rib.tables()  # the channel's reconfigure replaces them: no copy
        upstream_imported(core, upstream, upstream.channel.reconfigure(config), old)
