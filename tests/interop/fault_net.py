"""Faults of the upstream link (the veth pair between the node and the ToR): down and up, and
packet loss both ways."""

from __future__ import annotations

import re
import shutil
from typing import TYPE_CHECKING

from lab import Host
from lab.netns import IP

if TYPE_CHECKING:
    from .fault_rack import FaultRack


class LinkLoss:
    """``percent`` loss both ways on the upstream link, as a context manager: netem on both
    ends where the kernel has it, else iptables' statistic match on the node's end (in and
    out). ``counts()`` is (packets dropped, packets seen) so far."""

    def __init__(self, rack: FaultRack, percent: int) -> None:
        self.rack = rack
        self.percent = percent
        self.ends = ((rack.node, rack.node_if), (rack.tor_host, rack.tor_if))
        self.netem = netem_available(rack.node, rack.node_if)
        if not self.netem and shutil.which("iptables") is None:
            raise RuntimeError(
                "packet loss needs netem (sch_netem) or iptables with the statistic match: this"
                " kernel has no netem and iptables is not installed (apt-get install iptables)"
            )

    def __enter__(self) -> LinkLoss:
        if self.netem:
            for host, ifname in self.ends:
                host.run(["tc", "qdisc", "add", "dev", ifname, "root", "netem", "loss",
                          f"{self.percent}%"])  # fmt: skip
        else:
            self._iptables("-A")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.netem:
            for host, ifname in self.ends:
                host.run(["tc", "qdisc", "del", "dev", ifname, "root"])
        else:
            self._iptables("-D")

    def _rules(self) -> list[list[str]]:
        ifname = self.rack.node_if
        probability = str(self.percent / 100)
        rules = []
        for chain, direction in (("INPUT", "-i"), ("OUTPUT", "-o")):
            rules.append([chain, direction, ifname, "-m", "statistic", "--mode", "random",
                          "--probability", probability, "-j", "DROP"])  # fmt: skip
            rules.append([chain, direction, ifname, "-j", "RETURN"])  # counts what got through
        return rules

    def _iptables(self, op: str) -> None:
        for rule in self._rules():
            result = self.rack.node.run(["iptables", "-w", op, *rule], check=False)
            if result.returncode != 0:
                raise RuntimeError(
                    f"iptables {op} {' '.join(rule)} failed (no statistic match in this "
                    f"kernel?), and there is no netem either: {result.stderr.strip()}"
                )

    def counts(self) -> tuple[int, int]:
        if self.netem:
            dropped = sent = 0
            for host, ifname in self.ends:
                out = host.run(["tc", "-s", "qdisc", "show", "dev", ifname]).stdout
                dropped += sum(int(n) for n in re.findall(r"dropped (\d+)", out))
                sent += sum(int(n) for n in re.findall(r"Sent \d+ bytes (\d+) pkt", out))
            return dropped, dropped + sent
        dropped = passed = 0
        for chain in ("INPUT", "OUTPUT"):
            out = self.rack.node.run(["iptables", "-w", "-L", chain, "-v", "-n", "-x"]).stdout
            for line in out.splitlines():
                fields = line.split()
                if len(fields) > 2 and fields[2] in ("DROP", "RETURN"):
                    if fields[2] == "DROP":
                        dropped += int(fields[0])
                    else:
                        passed += int(fields[0])
        return dropped, dropped + passed


def netem_available(host: Host, ifname: str) -> bool:
    """Whether `tc qdisc … netem` works here (it does not on kernels built without it)."""
    added = host.run(["tc", "qdisc", "add", "dev", ifname, "root", "netem", "loss", "0%"],
                     check=False)  # fmt: skip
    if added.returncode != 0:
        return False
    host.run(["tc", "qdisc", "del", "dev", ifname, "root"])
    return True


def link(host: Host, ifname: str, up: bool) -> None:
    host.run([IP, "link", "set", ifname, "up" if up else "down"])
