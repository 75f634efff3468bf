"""Interop test harness: real BGP daemons in network namespaces joined by veth pairs."""

from .bird import Bird
from .daemon import Daemon
from .exabgp import ExaBgp
from .frr import Frr
from .gobgp import GoBgp
from .model import Announce, Neighbor, Route
from .netns import Host, Topology
from .wait import wait_until

__all__ = [
    "Announce",
    "Bird",
    "Daemon",
    "ExaBgp",
    "Frr",
    "GoBgp",
    "Host",
    "Neighbor",
    "Route",
    "Topology",
    "wait_until",
]
