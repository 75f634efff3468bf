"""The text side of the ExaBGP 5.0 engine, pure: its configuration and environment, the API
commands bgpmux writes, and the JSON messages ExaBGP writes back.

Facts about ExaBGP 5.0.15 this file relies on (read in its source and checked against gobgpd):
- ``announce attributes <attrs> next-hop <ip> nlri <p> <p> ...`` is one RIB change per prefix
  but one command to parse; all prefixes of one line must be of one family (ExaBGP takes the
  family from the last one). The API reads at most 1 MiB per line, so lines are split well below.
- Several peers take ``neighbor A , neighbor B <command>`` (the comma is a word of its own).
- ``as-path [ 1 2 ] ( 3 4 )`` is an AS_SEQUENCE followed by an AS_SET. Without ``as-path`` ExaBGP
  sends an empty path over iBGP and ``[ local-as ]`` over eBGP.
- ``attribute [ 0xCODE 0xFLAGS 0xDATA ]`` sends an attribute as given (extended length is added
  by ExaBGP when the value needs it).
- With ``capability { route-refresh enable; }`` ExaBGP offers route refresh and enhanced route
  refresh (RFC 2918, 7313), keeps an Adj-RIB-Out (``adj-rib-out`` is forced on) and answers
  every ROUTE-REFRESH from it itself, in BoRR/EoRR where enhanced refresh was negotiated; it
  also re-announces that Adj-RIB-Out on each new session. ``receive { refresh; }`` reports each
  ROUTE-REFRESH as ``{"type": "refresh", ... "route-refresh": {"afi", "safi", "subtype":
  "query" | "begin" | "end"}}``.
- With ``exabgp.api.compact=true`` a received prefix is a plain string, otherwise an object with
  an ``nlri`` key; both are accepted. The AS path is ``{"0": {"element": "as-sequence",
  "value": [...]}, ...}``. Unknown attributes arrive as ``"attribute-0xCC-0xFF": "0xHEX"``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import Config, Upstream
from ..transport.gtsm import GTSM_TTL
from ..wire.attributes import AsPathSegment, PathAttributes
from ..wire.capabilities import GracefulRestart
from ..wire.constants import (
    IPV4_UNICAST,
    AttrFlag,
    CapabilityCode,
    Family,
    Origin,
    RefreshSubtype,
    SegmentType,
)
from ..wire.messages import Open
from ..wire.prefix import Prefix, prefix_from_text, prefix_to_str
from .exabgp_graceful import FAMILY_BY_WORDS, graceful_restart, multiprotocol_families
from .exabgp_session import MessageSeen, open_from_json, parse_seen

# ExaBGP refuses a command line over 1 MiB; stay well below it.
MAX_LINE = 500 * 1024
PROCESS_NAME = "bgpmux"

_FAMILY_WORDS = {family: words for words, family in FAMILY_BY_WORDS.items()}
_ORIGIN_WORDS = {Origin.IGP: "igp", Origin.EGP: "egp", Origin.INCOMPLETE: "incomplete"}
_ORIGIN_BY_WORDS = {words: int(origin) for origin, words in _ORIGIN_WORDS.items()}
_EXTENDED_COMMUNITIES = 16
_OPT_TRANS_PARTIAL = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE | AttrFlag.PARTIAL


# ----------------------------------------------------------------------------- configuration


def peer_address(upstream: Upstream) -> str:
    """The upstream's (resolved) address as text: how ExaBGP names the neighbor."""
    return str(upstream.ip)


def local_address(config: Config, upstream: Upstream) -> str | None:
    """The session's source: the node address of the upstream's address family (None when
    the node has no address of that family)."""
    address = config.node.address_of(upstream.ip.version)
    return str(address) if address is not None else None


def families(config: Config) -> list[str]:
    """The families every session carries (``Node.next_hops``) as ExaBGP's configuration
    names them."""
    return [_FAMILY_WORDS[family] for family in config.node.next_hops()]


def _quoted(text: str) -> str:
    if any(c in text for c in "\"'\n;{}") or not text.isprintable():
        raise ValueError("an MD5 password for ExaBGP may not contain quotes, ';', '{', '}'")
    return f'"{text}"'


def exabgp_config(config: Config, process: Sequence[str]) -> str:
    """The ExaBGP configuration: one API process (``process``: argv) and one neighbor per
    upstream. Reads the upstreams' password files: raises OSError when one cannot be read,
    ValueError when a password holds characters ExaBGP cannot take."""
    lines = [
        f"process {PROCESS_NAME} {{",
        f"    run {' '.join(process)};",
        "    encoder json;",
        "    respawn false;",  # bgpmux restarts ExaBGP and the relay together
        "}",
    ]
    for upstream in config.upstreams:
        source = local_address(config, upstream)
        lines += [
            "",
            f"neighbor {peer_address(upstream)} {{",
            f'    description "{upstream.name}";',
            f"    router-id {config.node.router_id};",
        ]
        if source is not None:
            lines.append(f"    local-address {source};")
        lines += [
            f"    local-as {config.node.asn};",
            f"    peer-as {upstream.asn};",
            f"    hold-time {upstream.hold_time};",
            "    passive false;",  # we dial: a Calico node's BIRD owns *:179
            "    manual-eor true;",  # bgpmux sends End-of-RIB once the table is out
            "    group-updates true;",
            "    adj-rib-out true;",  # what ExaBGP answers a ROUTE-REFRESH from
        ]
        if upstream.port != 179:
            lines.append(f"    connect {upstream.port};")
        if upstream.password_file is not None:
            password = upstream.password_file.read_text(encoding="utf-8").strip()
            lines.append(f"    md5-password {_quoted(password)};")
        if upstream.ttl_security:  # GTSM (RFC 5082): send with 255, drop what has less
            lines += [f"    outgoing-ttl {GTSM_TTL};", f"    incoming-ttl {GTSM_TTL};"]
        lines.append("    family {")
        lines += [f"        {words};" for words in families(config)]
        lines.append("    }")
        # No extended message (RFC 8654): with 4096 octets known as the limit, bgpmux sizes
        # each announcement before sending it (ExaBGP drops what does not fit, silently).
        lines += [
            "    capability {",
            "        extended-message disable;",
            "        route-refresh enable;",
        ]
        if upstream.graceful_restart > 0:
            lines.append(f"        graceful-restart {upstream.graceful_restart};")
        lines.append("    }")
        lines += [
            "    api {",
            f"        processes [ {PROCESS_NAME} ];",
            "        neighbor-changes;",
            # the upstream's OPEN: its graceful-restart capability (RFC 4724 §3); and what
            # exabgp_session counts and negotiates from (never sent UPDATEs: see there)
            "        receive { parsed; update; open; keepalive; refresh; }",
            "        send { parsed; open; keepalive; notification; }",
            "    }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def exabgp_env(config: Config) -> dict[str, str]:
    """ExaBGP's settings, as the environment variables it reads (``exabgp env`` lists them)."""
    return {
        "exabgp_daemon_daemonize": "false",
        "exabgp_daemon_drop": "false",  # stay root, as bgpmux runs (no switch to `nobody`)
        "exabgp_daemon_user": "root",
        "exabgp_daemon_pid": "",
        "exabgp_log_destination": "stdout",  # read by bgpmux
        "exabgp_log_level": config.exabgp.log_level.upper(),
        "exabgp_log_short": "true",
        "exabgp_reactor_speed": str(config.exabgp.reactor_speed),
        "exabgp_tcp_bind": "",  # never listen: we dial, and *:179 may be taken
        "exabgp_api_ack": "true",  # answered done/error, always read by the relay
        "exabgp_api_encoder": "json",
        "exabgp_api_compact": "true",
        "exabgp_api_respawn": "false",
        "exabgp_api_terminate": "true",
        "exabgp_api_cli": "false",  # no named pipes
    }


def exabgp_env_file(env: dict[str, str]) -> str:
    """The same settings as an ExaBGP environment file (``--env-file``; without one ExaBGP logs
    an "environment file missing" advice at every start). Environment variables win over it."""
    sections: dict[str, list[str]] = {}
    for key, value in env.items():
        _exabgp, section, option = key.split("_", 2)
        sections.setdefault(f"exabgp.{section}", []).append(f"{option} = '{value}'")
    out: list[str] = []
    for section, options in sections.items():
        out += [f"[{section}]", *options, ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------- commands


def _ip(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed[:16] if len(packed) > 16 else packed))


def _as_path(segments: tuple[AsPathSegment, ...]) -> str:
    words: list[str] = []
    for kind, asns in segments:
        if not asns:
            continue
        if kind == SegmentType.AS_SEQUENCE:
            words.append(f"[ {' '.join(map(str, asns))} ]")
        elif kind == SegmentType.AS_SET:
            words.append(f"( {' '.join(map(str, asns))} )")
        # confederation segments never leave a confederation (RFC 5065 §5.3): not sent
    return " ".join(words)


def format_attributes(attrs: PathAttributes) -> str:
    """``PathAttributes`` as the words of an ExaBGP ``attributes`` command (no next hop).
    Confederation segments are left out; other attributes go as raw ``attribute`` words with
    Partial set (RFC 4271 §5, bgpmux passes on what it does not interpret)."""
    words = [f"origin {_ORIGIN_WORDS.get(Origin(attrs.origin), 'incomplete')}"]
    path = _as_path(attrs.as_path)
    if path:
        words.append(f"as-path {path}")
    if attrs.med is not None:
        words.append(f"med {attrs.med}")
    if attrs.local_pref is not None:
        words.append(f"local-preference {attrs.local_pref}")
    if attrs.atomic_aggregate:
        words.append("atomic-aggregate")
    if attrs.aggregator is not None:
        asn, address = attrs.aggregator
        words.append(f"aggregator ( {asn}:{_ip(address)} )")
    if attrs.communities:
        text = " ".join(f"{c >> 16}:{c & 0xFFFF}" for c in attrs.communities)
        words.append(f"community [ {text} ]")
    if attrs.large_communities:
        text = " ".join(f"{a}:{b}:{c}" for a, b, c in attrs.large_communities)
        words.append(f"large-community [ {text} ]")
    for flags, code, value in attrs.other:
        flags = (flags | AttrFlag.PARTIAL) & ~AttrFlag.EXTENDED_LENGTH & 0xFF
        words.append(f"attribute [ 0x{code:02x} 0x{flags:02x} 0x{value.hex()} ]")
    return " ".join(words)


def _neighbors(peers: Sequence[str]) -> str:
    return " , ".join(f"neighbor {peer}" for peer in peers)


def _split(head: str, family: Family, prefixes: Sequence[Prefix], limit: int) -> list[str]:
    lines: list[str] = []
    words: list[str] = []
    size = len(head)
    for prefix in prefixes:
        text = prefix_to_str(family, prefix)
        if words and size + 1 + len(text) > limit:
            lines.append(f"{head} {' '.join(words)}")
            words, size = [], len(head)
        words.append(text)
        size += 1 + len(text)
    if words:
        lines.append(f"{head} {' '.join(words)}")
    return lines


def format_announce(
    peers: Sequence[str],
    family: Family,
    attrs: PathAttributes,
    next_hop: bytes,
    prefixes: Sequence[Prefix],
    limit: int = MAX_LINE,
) -> list[str]:
    """``announce`` command lines for ``peers`` (addresses), each at most ``limit``
    characters; the prefixes must be of ``family``."""
    head = (
        f"{_neighbors(peers)} announce attributes {format_attributes(attrs)}"
        f" next-hop {_ip(next_hop)} nlri"
    )
    return _split(head, family, prefixes, limit)


def format_withdraw(
    peers: Sequence[str], family: Family, prefixes: Sequence[Prefix], limit: int = MAX_LINE
) -> list[str]:
    """``withdraw`` command lines for ``peers`` (addresses), each at most ``limit``
    characters."""
    return _split(f"{_neighbors(peers)} withdraw attributes nlri", family, prefixes, limit)


def format_teardown(peer: str, subcode: int) -> str:
    """The command that ends the session with ``peer`` with Cease/``subcode`` (RFC 4486);
    ExaBGP dials it again."""
    return f"neighbor {peer} teardown {subcode}"


def format_end_of_rib(peer: str, family: Family) -> str:
    """The command that sends End-of-RIB for ``family`` (RFC 4724 §2) to ``peer``."""
    return f"neighbor {peer} announce eor {_FAMILY_WORDS[family]}"


# ----------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class StateChange:
    """A neighbor's session changed state; ``reason`` says why it went down."""

    peer: str
    state: str  # "connected", "up", "down"
    reason: str = ""


@dataclass
class RoutesReceived:
    """One UPDATE from a neighbor: ``announced`` as (family, attributes, next hop, prefixes)
    and ``withdrawn`` as (family, prefixes)."""

    peer: str
    announced: list[tuple[Family, PathAttributes, bytes, list[Prefix]]] = field(
        default_factory=list
    )
    withdrawn: list[tuple[Family, list[Prefix]]] = field(default_factory=list)


@dataclass(frozen=True)
class EndOfRib:
    """A neighbor sent End-of-RIB for ``family`` (RFC 4724 §2)."""

    peer: str
    family: Family


@dataclass(frozen=True)
class RouteRefreshReceived:
    """A neighbor sent a BoRR (``subtype`` 1) or an EoRR (2) for ``family`` (RFC 7313 §3); a
    request (0) ExaBGP answers itself, and ``parse_message`` drops it."""

    peer: str
    family: Family
    subtype: int


@dataclass(frozen=True)
class Shutdown:
    """ExaBGP tells its processes it is going away."""


@dataclass(frozen=True)
class OpenReceived:
    """A neighbor's OPEN: its graceful-restart capability (None: it sent none), the families
    it can carry (RFC 4760 §8), and the whole OPEN."""

    peer: str
    graceful_restart: GracefulRestart | None
    families: tuple[Family, ...] = (IPV4_UNICAST,)
    open: Open | None = None


Message = (StateChange | RoutesReceived | EndOfRib | RouteRefreshReceived | Shutdown
           | OpenReceived | MessageSeen)  # fmt: skip
_SUBTYPES = {
    "query": RefreshSubtype.REQUEST,
    "begin": RefreshSubtype.BORR,
    "end": RefreshSubtype.EORR,
}


def parse_message(line: str | bytes) -> Message | None:
    """One JSON line from ExaBGP; None for what bgpmux does not use.

    Raises ValueError, KeyError or TypeError on a line that is not what ExaBGP 5.0 writes.
    """
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    kind = data.get("type")
    if kind == "notification" and data.get("notification") == "shutdown":
        return Shutdown()
    neighbor = data.get("neighbor")
    if not isinstance(neighbor, dict):
        return None
    peer = str(neighbor["address"]["peer"])
    if kind == "state":
        return StateChange(peer, str(neighbor.get("state", "")), str(neighbor.get("reason", "")))
    received = neighbor.get("direction") == "receive"
    if kind == "open" and received:
        # keyed by capability code ("64"), each with a "name" ("graceful restart")
        capabilities = neighbor["open"].get("capabilities", {})
        graceful = capabilities.get(str(int(CapabilityCode.GRACEFUL_RESTART)))
        restart = graceful_restart(graceful) if graceful is not None else None
        opened = open_from_json(neighbor["open"])
        return OpenReceived(peer, restart, multiprotocol_families(capabilities), opened)
    if kind == "refresh" and received:
        refresh = neighbor["route-refresh"]
        family = FAMILY_BY_WORDS.get(f"{refresh.get('afi')} {refresh.get('safi')}")
        subtype = _SUBTYPES.get(str(refresh.get("subtype")))
        if family is None or not subtype:  # a request (0): ExaBGP answers it from its Adj-RIB-Out
            return parse_seen(peer, kind, neighbor)
        return RouteRefreshReceived(peer, family, subtype)
    if kind == "update":
        message = neighbor.get("message", {})
        if "eor" in message:  # End-of-RIB: {"message": {"eor": {"afi": .., "safi": ..}}}
            eor = message["eor"]
            family = FAMILY_BY_WORDS.get(f"{eor.get('afi')} {eor.get('safi')}")
            return EndOfRib(peer, family) if family is not None else None
        if "update" not in message:
            return None
        return _routes(peer, message["update"])
    return parse_seen(peer, str(kind), neighbor)


def _prefix_text(item: Any) -> str:
    return str(item["nlri"]) if isinstance(item, dict) else str(item)


def _prefixes(family: Family, items: list[Any]) -> list[Prefix]:
    try:
        return [prefix_from_text(family, _prefix_text(item)) for item in items]
    except OSError as exc:  # inet_pton: not an address of this family
        raise ValueError(f"a prefix that is not {family}: {exc}") from None


def _routes(peer: str, update: dict[str, Any]) -> RoutesReceived:
    received = RoutesReceived(peer)
    for words, items in update.get("withdraw", {}).items():
        family = FAMILY_BY_WORDS.get(words)
        if family is not None:
            received.withdrawn.append((family, _prefixes(family, items)))
    announce = update.get("announce", {})
    if announce:
        attrs = parse_attributes(update.get("attribute", {}))
        for words, by_next_hop in announce.items():
            family = FAMILY_BY_WORDS.get(words)
            if family is None:
                continue
            hops = {
                key: ipaddress.ip_address(str(key).split()[0].split(",")[0]) for key in by_next_hop
            }
            # ExaBGP lists an IPv6 NLRI under its global and again under its link-local next
            # hop: the link-local one is only usable on the upstream's link, so keep the global.
            has_global = any(not address.is_link_local for address in hops.values())
            for next_hop, items in by_next_hop.items():
                address = hops[next_hop]
                if address.is_link_local and has_global:
                    continue
                received.announced.append((family, attrs, address.packed, _prefixes(family, items)))
    return received


def _json_as_path(value: Any) -> tuple[AsPathSegment, ...]:
    if isinstance(value, list):  # older encoders: a plain sequence
        return ((SegmentType.AS_SEQUENCE, tuple(int(a) for a in value)),) if value else ()
    segments: list[AsPathSegment] = []
    for key in sorted(value, key=int):
        segment = value[key]
        kind = SegmentType.AS_SET if segment.get("element") == "as-set" else SegmentType.AS_SEQUENCE
        asns = tuple(int(a) for a in segment.get("value", ()))
        if asns:
            segments.append((kind, asns))
    return tuple(segments)


def _extended_communities(value: Any) -> bytes:
    out = bytearray()
    for item in value:
        number = int(item["value"]) if isinstance(item, dict) else int(item)
        out += number.to_bytes(8, "big")
    return bytes(out)


def parse_attributes(attribute: dict[str, Any]) -> PathAttributes:
    """ExaBGP's ``attribute`` object as ``PathAttributes`` (what bgpmux's own decoder keeps).
    Extended communities and unknown optional transitive attributes are kept as raw ``other``
    attributes with Partial set; other unknown attributes are dropped."""
    aggregator = None
    if "aggregator" in attribute:
        asn, _sep, address = str(attribute["aggregator"]).strip("( )").partition(":")
        aggregator = (int(asn), ipaddress.IPv4Address(address.strip()).packed)
    other: list[tuple[int, int, bytes]] = []
    if "extended-community" in attribute:
        value = _extended_communities(attribute["extended-community"])
        other.append((_OPT_TRANS_PARTIAL, _EXTENDED_COMMUNITIES, value))
    for key, value in attribute.items():
        if not key.startswith("attribute-0x"):
            continue
        _word, code_text, flags_text = key.split("-")
        code, flags = int(code_text, 16), int(flags_text, 16)
        if flags & AttrFlag.OPTIONAL and flags & AttrFlag.TRANSITIVE:
            other.append((_OPT_TRANS_PARTIAL, code, bytes.fromhex(str(value)[2:])))
    communities = tuple((int(a) << 16) | int(b) for a, b in attribute.get("community", ()))
    large = tuple((int(a), int(b), int(c)) for a, b, c in attribute.get("large-community", ()))
    med = attribute.get("med")
    local_pref = attribute.get("local-preference")
    return PathAttributes(
        origin=_ORIGIN_BY_WORDS.get(str(attribute.get("origin", "igp")), Origin.INCOMPLETE),
        as_path=_json_as_path(attribute.get("as-path", ())),
        med=int(med) if med is not None else None,
        local_pref=int(local_pref) if local_pref is not None else None,
        atomic_aggregate=bool(attribute.get("atomic-aggregate", False)),
        aggregator=aggregator,
        communities=communities,
        large_communities=large,
        other=tuple(sorted(other, key=lambda item: item[1])),
    )
