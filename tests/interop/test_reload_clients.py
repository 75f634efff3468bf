"""Live reload from a ConfigMap volume, with real daemons: bgpmux (native engine) reads its
config through the kubelet's ``..data`` symlinks (lab.ConfigMapVolume) and watches it. A GoBGP
ToR, Calico's BIRD and MetalLB's FRR; namespaces tagged "rc".

One client at start (calico); a new version of the ConfigMap adds metallb (FRR, already
dialling): it comes up and its route reaches the ToR while calico's session never flaps; the
next version removes it: its route leaves the ToR, FRR is told Cease/Peer De-configured, its
metrics series go, calico untouched; an invalid version is refused, the old config keeps
running and bgpmux_config_reload_failures_total counts it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from lab import Announce, Bgpmux, ConfigMapVolume, Frr, GoBgp, Neighbor, Topology, wait_until

from .e2e_rack import (
    CALICO_ANNOUNCE,
    CALICO_V4,
    LOOPBACK,
    METALLB_AS,
    METALLB_PORT,
    METALLB_V4,
    NODE_AS,
    NODE_V4,
    NODE_V6,
    TOR_AS,
    TOR_V4,
    TOR_V6,
    calico_bird,
    norm,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]
FAILURES = "bgpmux_config_reload_failures_total"

CALICO = {
    "name": "calico",
    "listen": f"{LOOPBACK}:1790",
    "asn": NODE_AS,
    "accept": ["10.244.0.0/16 le 32", "2001:db8:244::/48 le 128"],
    "receive_upstream_routes": True,
}
METALLB = {
    "name": "metallb",
    "listen": f"{LOOPBACK}:{METALLB_PORT}",
    "asn": METALLB_AS,
    "accept": ["198.51.100.0/24 le 32"],
}


class WatchedBgpmux(Bgpmux):
    """bgpmux reading its config from a ConfigMap volume (``volume``'s ``bgpmux.yaml``)."""

    def __init__(self, volume: ConfigMapVolume, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.volume = volume

    def publish(self, config: dict[str, Any] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        self.volume.write({"bgpmux.yaml": text})

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bgpmux", "run", "-c", str(self.volume.path("bgpmux.yaml"))]


def config(clients: list[dict[str, Any]], mux: Bgpmux | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "node": {"asn": NODE_AS, "router_id": NODE_V4, "address": NODE_V4,
                 "address_v6": NODE_V6, "initial_sync_timeout": 1},
        "engine": "native",
        "upstreams": [{"name": "tor", "address": TOR_V4, "asn": TOR_AS, "hold_time": 30}],
        "clients": clients,
    }  # fmt: skip
    if mux is not None:  # the lab's settings (API socket, metrics, log) kept
        out.update({k: mux.config[k] for k in ("api", "metrics", "log")})
    return out


class Rig:
    def __init__(self, topo: Topology, mux: WatchedBgpmux, tor: GoBgp, frr: Frr) -> None:
        self.topo, self.mux, self.tor, self.frr = topo, mux, tor, frr

    def tor_has(self, prefix: str) -> bool:
        return norm(prefix) in {norm(p) for p in self.tor.routes_of("ipv4")}

    def calico_session(self) -> tuple[float, float]:
        """calico's ``since`` (Unix time it became Established, to 0.1 s: the API derives it
        from the loop's clock at each call) and its flaps."""
        since = self.mux.sessions()["calico"]["since"]
        flaps = self.mux.metric("bgpmux_session_flaps_total", peer="calico")
        assert since is not None and flaps is not None
        return round(since, 1), flaps

    def tor_updates(self) -> float:
        """UPDATEs sent to the ToR so far (End-of-RIB included)."""
        labels = {"peer": "tor", "role": "upstream", "type": "UPDATE"}
        return self.mux.metric("bgpmux_messages_sent_total", **labels) or 0.0

    def tor_flaps(self) -> float:
        return self.mux.metric("bgpmux_session_flaps_total", peer="tor") or 0.0


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    with Topology(tag="rc") as topo:
        node, tor_host = topo.add_host("node"), topo.add_host("tor")
        topo.link(
            node, [f"{NODE_V4}/30", f"{NODE_V6}/64"], tor_host, [f"{TOR_V4}/30", f"{TOR_V6}/64"]
        )
        tor = GoBgp(
            tor_host, "tor", TOR_AS, TOR_V4,
            [Neighbor(NODE_V4, NODE_AS, passive=True, families=("ipv4",))], api_port=50051,
        ).start()  # fmt: skip
        assert isinstance(tor, GoBgp)
        wait_until(
            lambda: ":179 " in tor_host.run(["ss", "-Hltn", "sport = :179"]).stdout,
            timeout=15, interval=0.1, what="the ToR listening", logs_of=[tor],
        )  # fmt: skip
        volume = ConfigMapVolume(node.workdir / "configmap")
        mux = WatchedBgpmux(volume, node, "bgpmux", config([CALICO]))
        mux.publish(config([CALICO], mux))
        mux.start()
        calico = calico_bird(node, list(CALICO_ANNOUNCE)).start()
        # MetalLB's FRR dials from the start: refused until bgpmux is told of it
        frr = Frr(
            node, "metallb", METALLB_AS, NODE_V4,
            [Neighbor(LOOPBACK, NODE_AS, port=METALLB_PORT)],
            [Announce(METALLB_V4)], listen_port=None, connect_retry=1,
        )  # fmt: skip
        frr.start()
        rig = Rig(topo, mux, tor, frr)
        daemons = [mux, tor, calico, frr]
        mux.wait_established("tor", "calico", timeout=40)
        wait_until(lambda: rig.tor_has(CALICO_V4), timeout=30, what="calico at the ToR",
                   logs_of=daemons)  # fmt: skip
        yield rig


def test_a_client_added_then_removed_through_the_data_swap(rig: Rig) -> None:
    mux = rig.mux
    logs = [mux, rig.frr]
    since, flaps = rig.calico_session()
    updates = rig.tor_updates()
    assert "metallb" not in mux.sessions()

    mux.publish(config([CALICO, METALLB], mux))
    mux.wait_established("metallb", timeout=30)
    wait_until(lambda: rig.tor_has(METALLB_V4), timeout=20, what="metallb at the ToR",
               logs_of=logs)  # fmt: skip
    assert rig.calico_session() == (since, flaps)  # calico's session was not touched
    assert rig.tor_flaps() == 0
    assert mux.metric("bgpmux_session_up", peer="metallb", role="client") == 1

    mux.publish(config([CALICO], mux))
    wait_until(lambda: not rig.tor_has(METALLB_V4), timeout=20, what="metallb gone from the ToR",
               logs_of=logs)  # fmt: skip
    wait_until(lambda: "metallb" not in mux.sessions(), timeout=10, what="metallb forgotten",
               logs_of=logs)  # fmt: skip
    assert mux.metric("bgpmux_session_up", peer="metallb", role="client") is None
    assert rig.tor_has(CALICO_V4) and rig.calico_session() == (since, flaps)
    assert rig.tor_flaps() == 0
    # no re-advertisement: metallb's route announced, then withdrawn; nothing of calico's
    assert rig.tor_updates() - updates == 2
    # FRR was told why: Cease (6) / Peer De-configured (3), RFC 4486
    neighbor = json.loads(rig.frr.vtysh_cmd(f"show bgp neighbors {LOOPBACK} json") or "{}")
    last = neighbor.get(LOOPBACK, {}).get("lastNotificationReason", "")
    assert last == "Cease/Peer De-configured", neighbor


def test_an_invalid_config_is_refused_and_the_old_one_runs(rig: Rig) -> None:
    mux = rig.mux
    before = mux.metric(FAILURES) or 0.0
    since, flaps = rig.calico_session()
    bad = config([CALICO], mux)
    bad["clients"] = [{**CALICO, "asn": "not-a-number"}]
    mux.publish(bad)
    wait_until(lambda: mux.metric(FAILURES) == before + 1, timeout=10,
               what="the failure counted", logs_of=[mux])  # fmt: skip
    log = mux.log_path.read_text()
    assert "clients[0].asn" in log
    assert log.count("changed: reloading") == 3  # one per ConfigMap version: debounced
    assert rig.calico_session() == (since, flaps) and rig.tor_has(CALICO_V4)
    mux.publish(config([CALICO], mux))  # the good one again: applies, nothing to do
