"""Which upstreams apply on this node, and at which address: one configuration for every rack.

An upstream with ``node_cidrs`` applies only on nodes whose ``node.address`` (for an IPv6
CIDR: ``node.address_v6``) lies in one of them; ``address: default-gateway`` (or
``default-gateway6``) is the next hop of this node's default route. ``place`` turns the
configuration as written into the one this node runs: the upstreams that apply, each with a
concrete address. It is pure: the default route is looked up through the function it is given
(``bgpmux.gateway.default_gateway`` in the daemon), and only for upstreams that apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .config import Config, ConfigError, Node, upstream_needs
from .config_types import Gateway, IPAddress, IPNetwork
from .gateway import GatewayError

GatewayLookup = Callable[[int], IPAddress]
"""The next hop of this node's default route of IP version 4 or 6; raises GatewayError."""


@dataclass(frozen=True)
class Placed:
    """One configured upstream on this node: whether it applies and why (in words), and the
    address it is dialled at when it applies."""

    index: int
    name: str
    applies: bool
    why: str
    address: IPAddress | None = None


@dataclass(frozen=True)
class Placement:
    """``config``: what this node runs (only the upstreams that apply, addresses resolved);
    ``upstreams``: every configured upstream, in order, with why it applies or not."""

    config: Config
    upstreams: tuple[Placed, ...]

    @property
    def skipped(self) -> tuple[Placed, ...]:
        """The upstreams that do not apply on this node."""
        return tuple(p for p in self.upstreams if not p.applies)


def node_cidr_match(node: Node, cidrs: tuple[IPNetwork, ...] | None) -> tuple[bool, str]:
    """Whether an upstream with ``node_cidrs`` = ``cidrs`` applies on ``node``, and why."""
    if cidrs is None:
        return True, "no node_cidrs: every node"
    for cidr in cidrs:
        field = "node.address" if cidr.version == 4 else "node.address_v6"
        address = node.address_of(cidr.version)
        if address is not None and address in cidr:
            return True, f"{field} {address} is in {cidr}"
    mine = [
        f"{field} {address}"
        for field, address in (("node.address", node.address), ("node.address_v6", node.address_v6))
        if address is not None
    ]
    return False, f"{' and '.join(mine)} in none of node_cidrs {', '.join(map(str, cidrs))}"


def place(config: Config, gateway: GatewayLookup) -> Placement:
    """The configuration this node runs. Raises ConfigError naming the field: a default
    gateway that cannot be resolved, an upstream that applies here but has no source address
    of its family, two upstreams at one address, or no upstream that applies at all."""
    node = config.node
    placed: list[Placed] = []
    errors: list[tuple[str, str]] = []
    upstreams = []
    seen: dict[IPAddress, int] = {}
    for index, upstream in enumerate(config.upstreams):
        where = f"upstreams[{index}]"
        applies, why = node_cidr_match(node, upstream.node_cidrs)
        if not applies:
            placed.append(Placed(index, upstream.name, False, why))
            continue
        need = upstream_needs(node, upstream)
        if need is not None:
            errors.append((f"{where}.address", f"{need} ({why})"))
            continue
        address = upstream.address
        if isinstance(address, Gateway):
            try:
                address = gateway(address.version)
            except GatewayError as e:
                errors.append((f"{where}.address", str(e)))
                continue
            why += f"; {upstream.address} is {address}"
            upstream = upstream.model_copy(update={"address": address})
        if address in seen:
            msg = f"{address} is also the address of upstreams[{seen[address]}]"
            errors.append((f"{where}.address", msg))
            continue
        seen[address] = index
        placed.append(Placed(index, upstream.name, True, why, address))
        upstreams.append(upstream)
    if not errors and not upstreams:
        lines = "; ".join(f"{p.name}: {p.why}" for p in placed)
        errors.append(("upstreams", f"none applies on this node ({lines})"))
    if errors:
        raise ConfigError(errors)
    return Placement(config.model_copy(update={"upstreams": tuple(upstreams)}), tuple(placed))
