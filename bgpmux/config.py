"""The configuration contract (README "Configuration"): YAML in, one frozen, validated
``Config`` out.

``parse_config`` expands ``${VAR}`` / ``${VAR:-default}`` over the raw text, parses the YAML and
validates it; every problem is reported as ``(dotted.path, message)`` in one ``ConfigError``.
Files named by the config (``password_file``) are checked separately (``secrets.check_files``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.networks import IPvAnyAddress

from .config_env import ConfigError as ConfigError  # re-exported, with expand_env
from .config_env import expand_env as expand_env
from .config_types import (
    ASN,
    CIDR,
    Community,
    EndpointField,
    Gateway,
    HoldTime,
    LargeCommunity,
    Name,
    PrefixRuleField,
    UpstreamAddress,
    parse_endpoint,
)
from .config_types import Endpoint as Endpoint  # re-exported: the config's value types
from .config_types import IPAddress as IPAddress
from .node_addresses import NodeIPv4, NodeIPv6, RouterId, default_router_id, fill_by_family
from .policy.prefix_list import PrefixRule as PrefixRule
from .wire.constants import IPV4_UNICAST, IPV6_UNICAST, Family

_T = TypeVar("_T")


class _FieldErrors(ValueError):
    """Raised by cross-field validators to report errors at paths below the validated model."""

    def __init__(self, errors: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(m for _, m in errors))


# --- value types -------------------------------------------------------------------------------


def parse_unix_listen(value: str) -> Path:
    """``unix:/abs/path`` -> the socket path."""
    if not value.startswith("unix:/"):
        raise ValueError(f"{value!r} is not 'unix:/absolute/path'")
    return Path(value.removeprefix("unix:"))


def _check_unix_listen(value: str) -> str:
    parse_unix_listen(value)
    return value


# --- models ------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _client_id_from(data: dict[str, Any]) -> IPv4Address:
    # Calico and MetalLB default their router id to the node address, and BIRD refuses a same-AS
    # OPEN that carries its own id (Bad BGP Identifier). 127.x.y.z can be neither a node's address
    # nor its router id, and stays stable per node.
    return IPv4Address(b"\x7f" + data["router_id"].packed[1:])


class Node(_Model):
    """This node: its AS, the router id the upstreams see, and its addresses, which are the
    sessions' source and the next hop of every route sent upstream (IPv4 routes only with
    ``address``, IPv6 routes only with ``address_v6``; an IPv6-only node gives only
    ``address_v6``, and an explicit ``router_id``)."""

    asn: ASN
    router_id: RouterId  # default: ``address`` (``node_addresses.default_router_id``)
    address: NodeIPv4 = None
    address_v6: NodeIPv6 = None
    addresses: tuple[IPAddress, ...] = ()
    """The node's addresses (``${NODE_IPS}``), filled into ``address`` and ``address_v6``."""
    client_router_id: IPv4Address = Field(default_factory=_client_id_from)
    """The BGP identifier bgpmux presents to its clients; upstreams see ``router_id``."""
    initial_sync_timeout: float = Field(default=30.0, ge=0, le=3600)
    """Seconds End-of-RIB waits after start: to the upstreams for every client's table, to the
    clients for the upstreams' tables."""

    @model_validator(mode="before")
    @classmethod
    def _by_family(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        try:
            data = fill_by_family(data)
        except ValueError as e:
            raise _FieldErrors([(("addresses",), str(e))]) from None
        try:
            return default_router_id(data)
        except ValueError as e:
            raise _FieldErrors([(("router_id",), str(e))]) from None

    @model_validator(mode="after")
    def _addresses(self) -> Node:
        errors: list[tuple[tuple[str | int, ...], str]] = []
        if self.address is None and self.address_v6 is None:
            msg = "required (or node.addresses; an IPv6-only node gives node.address_v6 instead)"
            errors.append((("address",), msg))
        if self.client_router_id in (self.router_id, self.address):
            msg = "must differ from node.router_id and node.address"
            errors.append((("client_router_id",), msg))
        if errors:
            raise _FieldErrors(errors)
        return self

    def address_of(self, version: int) -> IPAddress | None:
        """The node's address of IP ``version`` (4 or 6), None when it has none."""
        return self.address if version == 4 else self.address_v6

    def next_hops(self) -> dict[Family, IPAddress]:
        """The families every session carries, whatever its transport, each with the node's
        address that is its next hop: those the node has an address for (IPv6 only on an
        IPv6-only node)."""
        pairs = ((IPV4_UNICAST, self.address), (IPV6_UNICAST, self.address_v6))
        return {family: address for family, address in pairs if address is not None}


def _loopback(endpoint: Endpoint) -> Endpoint:
    if not endpoint.host.is_loopback:
        raise ValueError(
            f"{endpoint} is not a loopback address: gobgpd's API has no authentication, and "
            "whoever reaches it controls the sessions (use 127.0.0.1 or [::1])")  # fmt: skip
    if endpoint.port == 0:
        raise ValueError("port 0: give the port gobgpd's API listens on")
    return endpoint


class GoBGPSettings(_Model):
    """Settings of the gobgp engine: ``api``, where gobgpd's gRPC API listens (loopback only;
    bgpmux starts gobgpd with ``--api-hosts`` set to it), and ``external``: drive a gobgpd
    already running there instead of starting and supervising one."""

    api: Annotated[EndpointField, AfterValidator(_loopback)] = parse_endpoint("127.0.0.1:50051")
    external: bool = False


class ExaBGPSettings(_Model):
    """Settings of the exabgp engine: ExaBGP's reactor speed (seconds per loop) and log level."""

    # Measured: a reactor speed below 0.1 busy-spins a core forever.
    reactor_speed: float = Field(default=0.1, ge=0.1, le=10)
    log_level: str = "WARNING"


class Upstream(_Model):
    """A router bgpmux dials (the ToR): ``hold_time`` and ``graceful_restart`` (the restart
    time offered, RFC 4724 §3; 0: none) in seconds; ``password_file`` holds a TCP-MD5 key;
    ``ttl_security``: GTSM (RFC 5082, one hop). ``accept`` (None: all) and ``max_prefixes``
    (None: no limit; past it new prefixes are dropped, the session stays) are its import
    policy."""

    name: Name
    # An IP address, or ``default-gateway`` / ``default-gateway6``: resolved by
    # ``bgpmux.placement`` at start and on reload; engines only see resolved addresses.
    address: UpstreamAddress
    # Used only on nodes whose node.address (node.address_v6 for an IPv6 CIDR) lies in one of
    # these; None: on every node. See ``bgpmux.placement``.
    node_cidrs: tuple[CIDR, ...] | None = None
    asn: ASN
    port: int = Field(default=179, ge=1, le=65535)
    password_file: Path | None = None
    hold_time: HoldTime = 90
    graceful_restart: int = Field(default=120, ge=0, le=4095)
    # Routes from an eBGP upstream whose AS_PATH holds node.asn are loops and are dropped
    # (RFC 4271 §9.1.2). Set this where every node shares one AS and the ToR does not
    # rewrite it (no as-override), so that other nodes' routes still come down.
    allow_node_as: bool = False
    ttl_security: bool = False
    accept: tuple[PrefixRuleField, ...] | None = None
    max_prefixes: int | None = Field(default=None, ge=1)

    @property
    def ip(self) -> IPAddress:
        """The address to dial; raises ValueError while it is still ``default-gateway``
        (``bgpmux.placement.place`` resolves it)."""
        if isinstance(self.address, Gateway):
            raise ValueError(f"upstream {self.name}: {self.address} is not resolved")
        return self.address

    @model_validator(mode="after")
    def _node_cidrs_not_empty(self) -> Upstream:
        if self.node_cidrs is not None and not self.node_cidrs:
            raise _FieldErrors([(("node_cidrs",), "give at least one CIDR, or leave it out")])
        return self


class Client(_Model):
    """A local speaker (Calico, MetalLB) that dials bgpmux on ``listen``; the fields named in
    ``core.reload.POLICY_FIELDS`` are its import policy, the rest its session identity."""

    name: Name
    listen: EndpointField
    peer_address: IPvAnyAddress | None = None
    asn: ASN
    accept: tuple[PrefixRuleField, ...] = ()
    max_prefixes: int = Field(default=1000, ge=1)
    # What passing max_prefixes does (BIRD's import limit actions): ``restart`` closes the
    # session with Cease/Maximum Number of Prefixes Reached and refuses the client for
    # ``max_prefixes_restart`` seconds, doubled on each repeat up to an hour (0: until a
    # reload); ``block`` drops the prefixes over the limit and keeps the session; ``warn``
    # only logs and counts.
    max_prefixes_action: Literal["restart", "block", "warn"] = "restart"
    max_prefixes_restart: int = Field(default=60, ge=0, le=86400)
    # Octets of output the client has not read, in MiB, past which its session is closed with
    # Cease/Out of Resources (RFC 4486).
    output_limit_mib: int = Field(default=64, ge=1, le=4096)
    receive_upstream_routes: bool = False
    # Offer ADD-PATH send (RFC 7911): a client that can receive several paths per prefix gets
    # every upstream's path (ECMP across dual ToRs); off, or without the client's receive
    # capability, it gets the best path only. Part of the session's identity (a capability).
    add_path: bool = True
    priority: int = Field(default=100, ge=0, le=65535)
    keep_client_as_path: bool = False
    hold_time: HoldTime = 90
    router_id: RouterId | None = None
    add_communities: tuple[Community, ...] = ()
    add_large_communities: tuple[LargeCommunity, ...] = ()
    password_file: Path | None = None

    @model_validator(mode="after")
    def _md5_needs_peer(self) -> Client:
        # A listener's TCP-MD5 key is per remote address: without one named, a connection from
        # another of the host's addresses would be accepted unsigned.
        peer, version = self.peer_address, self.listen.host.version
        if self.password_file is None or (peer is not None and peer.version == version):
            return self
        msg = "required with password_file: the TCP-MD5 key is bound to the peer's address"
        if peer is not None:
            msg = f"must be IPv{version} like listen, for TCP-MD5"
        raise _FieldErrors([(("peer_address",), msg)])


METRICS_PORT = 9479
"""The port of ``metrics.listen`` when it is not set (on ``node.address``)."""


class Metrics(_Model):
    """Where the HTTP server for /metrics, /healthz and /readyz listens; ``listen`` None means
    ``node.address`` port ``METRICS_PORT`` (``Config.metrics_listen``)."""

    # Not 0.0.0.0: under hostNetwork that would serve /metrics on every interface of the node.
    # The kubelet's probes and the PodMonitor reach the pod IP, which there is the node address.
    listen: EndpointField | None = None


def _check_loopback(endpoint: Endpoint | None) -> Endpoint | None:
    if endpoint is not None and not endpoint.host.is_loopback:
        msg = f"{endpoint.host} is not loopback: the API has no authentication (127.0.0.1, ::1)"
        raise ValueError(msg)
    return endpoint


class Api(_Model):
    """Where the API (gRPC) listens: ``unix:/absolute/path``, and ``listen_tcp`` (loopback)."""

    listen: Annotated[str, AfterValidator(_check_unix_listen)] = "unix:/run/bgpmux/api.sock"
    listen_tcp: Annotated[EndpointField | None, AfterValidator(_check_loopback)] = None

    @property
    def path(self) -> Path:
        """The API socket's path."""
        return parse_unix_listen(self.listen)


class Log(_Model):
    """Log level and format (``text`` or ``json``), applied again on reload."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class Reload(_Model):
    """Live reload: ``watch`` reloads, as on SIGHUP, when the configuration file's content
    changes (``bgpmux.config_watch``: the kubelet's ``..data`` swap of a ConfigMap volume, an
    edit or a replace of a plain file)."""

    watch: bool = True


def _non_empty(items: tuple[_T, ...]) -> tuple[_T, ...]:
    # Not Field(min_length=1): pydantic would also report that on a list whose items are bad.
    if not items:
        raise ValueError("at least one is required")
    return items


class Config(_Model):
    """The whole configuration; validation also checks what spans sections (unique names,
    shared listen addresses, listeners that clash, router ids, IPv6 upstreams needing
    ``node.address_v6``)."""

    node: Node
    engine: Literal["exabgp", "gobgp", "native"] = "exabgp"
    gobgp: GoBGPSettings = GoBGPSettings()
    exabgp: ExaBGPSettings = ExaBGPSettings()
    upstreams: Annotated[tuple[Upstream, ...], AfterValidator(_non_empty)]
    clients: Annotated[tuple[Client, ...], AfterValidator(_non_empty)]
    metrics: Metrics = Metrics()
    api: Api = Api()
    log: Log = Log()
    reload: Reload = Reload()

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        errors: list[tuple[tuple[str | int, ...], str]] = []
        for i, upstream in enumerate(self.upstreams):
            # An upstream limited by node_cidrs is checked where it applies (placement).
            if upstream.node_cidrs is None:
                need = upstream_needs(self.node, upstream)
                if need is not None:
                    errors.append((("upstreams", i, "address"), need))
        for section in ("upstreams", "clients"):
            seen: dict[str, int] = {}
            for i, peer in enumerate(getattr(self, section)):
                if peer.name in seen:
                    msg = f"duplicate name {peer.name!r} (also {section}[{seen[peer.name]}])"
                    errors.append(((section, i, "name"), msg))
                seen.setdefault(peer.name, i)
        by_listen: dict[Endpoint, list[int]] = {}
        for i, client in enumerate(self.clients):
            by_listen.setdefault(client.listen, []).append(i)
        for listen, indexes in by_listen.items():
            if len(indexes) < 2:
                continue
            claimed: dict[IPAddress, int] = {}
            for i in indexes:
                peer = self.clients[i].peer_address
                if peer is None:
                    msg = f"required: clients share listen {listen}; each must name its peer"
                    errors.append((("clients", i, "peer_address"), msg))
                elif peer in claimed:
                    msg = f"{peer} is also clients[{claimed[peer]}] on listen {listen}"
                    errors.append((("clients", i, "peer_address"), msg))
                else:
                    claimed[peer] = i
        errors += _listen_clashes(self)
        for i, client in enumerate(self.clients):
            if client.router_id is not None and client.router_id in (
                self.node.router_id,
                self.node.address,
            ):
                msg = "must differ from node.router_id and node.address"
                errors.append((("clients", i, "router_id"), msg))
        if errors:
            raise _FieldErrors(errors)
        return self

    def client_router_id(self, client: Client) -> IPv4Address:
        """The BGP identifier bgpmux presents to ``client``."""
        return client.router_id or self.node.client_router_id

    @property
    def metrics_listen(self) -> Endpoint:
        """Where /metrics listens: ``metrics.listen``, else port 9479 on the node's primary
        address (the first of ``node.addresses``: the pod IP the kubelet probes), else on
        ``node.address`` (an IPv6-only node: ``node.address_v6``)."""
        if self.metrics.listen is not None:
            return self.metrics.listen
        host = next(iter(self.node.addresses), None) or self.node.address or self.node.address_v6
        assert host is not None  # Node requires one of them
        return Endpoint(host, METRICS_PORT)


def upstream_needs(node: Node, upstream: Upstream) -> str | None:
    """Why ``upstream`` cannot run on ``node`` (no source address of its family), or None."""
    version = upstream.address.version
    if node.address_of(version) is not None:
        return None
    if version == 6:
        return "an IPv6 upstream needs node.address_v6 (the session's source address)"
    return "an IPv4 upstream needs node.address (the session's source address)"


def _listen_clashes(config: Config) -> list[tuple[tuple[str | int, ...], str]]:
    """``(field path, message)`` for TCP listeners that could not all be bound: same port and
    family, and equal addresses or one the wildcard. IPv6 listeners are IPv6-only (asyncio's
    ``create_server`` sets IPV6_V6ONLY), so ``::`` leaves IPv4 alone and cannot bind an
    IPv4-mapped address. Clients may share one identical ``listen`` (told apart by
    ``peer_address``, checked above); nothing else may."""
    listeners: list[tuple[tuple[str | int, ...], Endpoint]] = [
        (("clients", i, "listen"), client.listen) for i, client in enumerate(config.clients)
    ]
    listeners.append((("metrics", "listen"), config.metrics_listen))
    if config.api.listen_tcp is not None:
        listeners.append((("api", "listen_tcp"), config.api.listen_tcp))
    errors: list[tuple[tuple[str | int, ...], str]] = []
    for n, (loc, endpoint) in enumerate(listeners):
        host, port = endpoint
        shown = str(endpoint)
        if loc == ("metrics", "listen") and config.metrics.listen is None:
            which = "node.address" if host.version == 4 else "node.address_v6"
            shown += f" (the default: {which} port {METRICS_PORT})"
        if isinstance(host, IPv6Address) and host.ipv4_mapped is not None:
            msg = f"{shown}: an IPv4-mapped address; write {Endpoint(host.ipv4_mapped, port)}"
            errors.append((loc, msg))
            continue
        for other_loc, other in listeners[:n]:
            if other.port != port or other.host.version != host.version:
                continue
            if other == endpoint and loc[0] == other_loc[0] == "clients":
                continue  # one shared listener
            wildcard = next((h for h in (other.host, host) if h.is_unspecified), None)
            if other == endpoint:
                why = "the same address and port"
            elif wildcard is not None:
                why = f"{wildcard} takes port {port} on every IPv{host.version} address"
            else:
                continue
            errors.append((loc, f"{shown} clashes with {_dotted(other_loc)} {other}: {why}"))
            break
    return errors


# --- loading -----------------------------------------------------------------------------------


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else part
    return out


def _errors_from(exc: ValidationError) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in exc.errors():
        if err["type"] == "default_factory_not_called":  # follows from an error already listed
            continue
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, _FieldErrors):
            out += [(_dotted((*err["loc"], *loc)), msg) for loc, msg in cause.errors]
        elif isinstance(cause, Exception):
            out.append((_dotted(err["loc"]), str(cause)))
        else:
            out.append((_dotted(err["loc"]), err["msg"]))
    return out


def parse_config(text: str, env: Mapping[str, str] = os.environ) -> Config:
    """Expand ``${VAR}`` from ``env``, parse the YAML and validate it; raises ConfigError
    listing every problem. Files the config names are not read (``secrets.check_files``)."""
    expanded = expand_env(text, env)
    try:
        data = yaml.safe_load(expanded)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError([("", f"{where}YAML syntax error: {problem}")]) from None
    if not isinstance(data, dict):
        raise ConfigError(
            [("", "expected a mapping (node:, upstreams:, clients:, ...) at the top")]
        )
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_errors_from(e)) from None


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] = os.environ) -> Config:
    """``parse_config`` of the UTF-8 file at ``path``; raises ConfigError, also when the file
    cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([("", f"cannot read the file: {e.strerror}")]) from None
    except UnicodeDecodeError as e:
        raise ConfigError([("", f"cannot read the file: {e}")]) from None
    return parse_config(text, env)
