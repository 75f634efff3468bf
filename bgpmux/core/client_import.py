"""The core's side of a client's import (an UPDATE, or a reloaded policy judging every route
again): logging what was refused, closing the session over ``max_prefixes``, and deciding the
changed prefixes in the upstreams' Loc-RIB."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..policy.channels import Imported
from ..rib.paths import Path
from ..wire.constants import Family
from ..wire.prefix import Prefix, PrefixText
from .peers import ClientPeer

if TYPE_CHECKING:
    from .routing import Core


def client_imported(
    core: Core,
    client: ClientPeer,
    imported: Imported,
    treat_as_withdraw: str | None = None,
    old: Mapping[Family, Mapping[Prefix, Path]] | None = None,
) -> bool:
    """Log what ``client``'s import refused (and ``treat_as_withdraw``, the reason a malformed
    UPDATE was treated as withdraw, RFC 7606), end its session when ``imported`` cut it off,
    log a limit reached, and decide the changed prefixes. ``old``: the client's routes before a
    reload (``AdjRibIn.tables``, read before the reload), whose changes carry no path.
    The changes are decided even when the client is cut off: they are in its Adj-RIB-In
    already, and a withdrawal (or a prefix a reload refused) is gone from it, so the session's
    end would not decide it again. Returns False when the client was cut off, True otherwise."""
    for family, prefix, reason in imported.rejected:
        core._log_batch(
            logging.WARNING,
            client.name,
            "rejected %s: %s",
            PrefixText(family, prefix),  # formatted only if the line is logged
            reason.value,
        )
    if treat_as_withdraw is not None:
        core._log_batch(
            logging.WARNING,
            client.name,
            "malformed UPDATE treated as withdraw: %s",
            treat_as_withdraw,
        )
    rib = client.channel.rib
    for family, prefixes, path in imported.changes:
        if prefixes:
            before = old.get(family, {}) if old is not None else None
            core._decide(core.for_upstreams, family, prefixes, rib, path, before)
    if imported.cut_off is not None:
        core._cut_off(client, imported.cut_off)
        return False
    if imported.limit_reached is not None:
        core._limit_reached(client, imported.limit_reached)
    return True
