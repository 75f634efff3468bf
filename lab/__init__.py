"""The lab: real BGP daemons (BIRD 2, FRR, GoBGP, ExaBGP) in network namespaces, for the demo,
the benchmark and the interop tests. Needs root; never touches the root namespace's interfaces."""

from .bird import Bird
from .configmap import ConfigMapVolume
from .daemon import Daemon
from .exabgp import ExaBgp
from .frr import Frr
from .gobgp import GoBgp
from .model import Announce, Neighbor, Route
from .mux import Bgpmux
from .netns import Host, Topology
from .wait import wait_until

__all__ = [
    "Announce",
    "Bgpmux",
    "Bird",
    "ConfigMapVolume",
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
