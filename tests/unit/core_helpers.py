"""In-memory pieces for unit tests of the core: its config, a client link that records what it
is sent, and UPDATE builders."""

from __future__ import annotations

import ipaddress

from bgpmux.session import DownReason
from bgpmux.wire import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    CodecOptions,
    Family,
    Framer,
    PathAttributes,
    Update,
)
from bgpmux.wire.messages import MpReach, MpUnreach, Notification, decode_body
from bgpmux.wire.prefix import prefix_from_str, prefix_to_str

CONFIG = """
node: {asn: 64512, router_id: 10.0.0.2, address: 10.0.0.2, address_v6: "2001:db8:ff::2",
       initial_sync_timeout: 30}
engine: native
upstreams: [{name: tor, address: 10.0.0.1, asn: 65000}]
clients:
  - {name: calico, listen: "127.0.0.1:1790", asn: 64512, priority: 100, max_prefixes: 10,
     accept: ["10.244.0.0/16 le 32", "2001:db8:244::/48 le 128", "198.51.100.0/24 le 32"],
     receive_upstream_routes: true}
  - {name: metallb, listen: "127.0.0.1:1791", asn: 64514, priority: 50, max_prefixes: 5,
     accept: ["198.51.100.0/24 le 32", "2001:db8:100::/48 le 128"],
     add_communities: ["64512:100"]}
"""


class FakeLink:
    def __init__(self) -> None:
        self.options = CodecOptions()
        self.families = (IPV4_UNICAST, IPV6_UNICAST)
        self.sent: list[bytes] = []
        self.shutdowns: list[Notification] = []
        self.down_reasons: list[DownReason] = []
        self.enhanced = False  # whether the session negotiated enhanced route refresh
        self.order: list[object] = []  # "UPDATE" per message sent, (family, subtype) per refresh

    def send(self, messages: list[bytes]) -> None:
        self.sent.extend(messages)
        self.order += ["UPDATE"] * len(messages)

    def send_route_refresh(self, family: Family, subtype: int = 0) -> bool:
        if family not in self.families or (subtype and not self.enhanced):
            return False
        self.order.append((family, subtype))
        return True

    def shutdown(self, notification: Notification, reason: DownReason) -> None:
        self.shutdowns.append(notification)
        self.down_reasons.append(reason)

    def updates(self) -> list[Update]:
        framer = Framer(self.options.max_message_len)
        out = []
        for data in self.sent:
            for kind, body in framer.feed(data):
                msg = decode_body(kind, body, self.options)
                assert isinstance(msg, Update)
                out.append(msg)
        return out

    def table(self) -> dict[str, PathAttributes]:
        """The net effect of everything sent: prefix -> attributes."""
        table: dict[str, PathAttributes] = {}
        for update in self.updates():
            for family, prefixes in update.withdrawals():
                for p in prefixes:
                    table.pop(prefix_to_str(family, p), None)
            for family, attrs, _nh, prefixes in update.announcements():
                for p in prefixes:
                    table[prefix_to_str(family, p)] = attrs
        return table


def attrs(as_path: tuple[int, ...] = (), **kw: object) -> PathAttributes:
    segments = ((2, as_path),) if as_path else ()
    return PathAttributes(as_path=segments, **kw)  # type: ignore[arg-type]


def announce(*prefixes: str, nh: str = "10.0.0.2", **kw: object) -> Update:
    v4 = [prefix_from_str(p)[1] for p in prefixes if ":" not in p]
    v6 = [prefix_from_str(p)[1] for p in prefixes if ":" in p]
    mp = (
        MpReach(IPV6_UNICAST, ipaddress.ip_address("2001:db8:ff::2").packed, tuple(v6))
        if v6
        else None
    )
    return Update(
        attributes=attrs(next_hop=ipaddress.ip_address(nh).packed, **kw),
        nlri=tuple(v4),
        mp_reach=mp,
    )


def withdraw(*prefixes: str) -> Update:
    v4 = tuple(prefix_from_str(p)[1] for p in prefixes if ":" not in p)
    v6 = tuple(prefix_from_str(p)[1] for p in prefixes if ":" in p)
    return Update(withdrawn=v4, mp_unreach=MpUnreach(IPV6_UNICAST, v6) if v6 else None)


EOR_V4 = Update()
EOR_V6 = Update(mp_unreach=MpUnreach(IPV6_UNICAST, ()))
