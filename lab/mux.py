"""bgpmux itself as a lab daemon: run from this environment, queried over its API and /metrics."""

from __future__ import annotations

import functools
import sys
from typing import Any

import yaml

from bgpmux.api.client import ApiClient

from .daemon import Daemon
from .netns import Host
from .wait import wait_until


class Bgpmux(Daemon):
    config_name = "bgpmux.yaml"

    def __init__(
        self, host: Host, name: str, config: dict[str, Any], metrics_port: int = 9479
    ) -> None:
        node = config["node"]
        super().__init__(host, name, node["asn"], node["router_id"], [])
        self.config = dict(config)
        self.api_path = self.dir / "api.sock"
        self.config.setdefault("api", {"listen": f"unix:{self.api_path}"})
        self.config.setdefault("metrics", {"listen": f"127.0.0.1:{metrics_port}"})
        self.config.setdefault("log", {"level": "debug"})
        self.metrics_address = self.config["metrics"]["listen"]

    def config_text(self) -> str:
        return yaml.safe_dump(self.config, sort_keys=False)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bgpmux", "run", "-c", str(self.config_path)]

    # ------------------------------------------------------------------ queries

    def client(self) -> ApiClient:
        """A client of this bgpmux's API (close it, or use it in a ``with``)."""
        return ApiClient(self.api_path, timeout=30)

    def sessions(self) -> dict[str, dict[str, Any]]:
        """Every session by name, as ``bgpmux status -o json`` gives them."""
        with self.client() as api:
            return {peer["name"]: peer for peer in api.peers()}

    def neighbor_state(self, address: str) -> str:
        """State of the session named ``address`` (a client or upstream name), RFC spelling."""
        state = self.sessions()[address]["state"]
        return (
            str(state)
            .replace("_", "")
            .title()
            .replace("Openconfirm", "OpenConfirm")
            .replace("Opensent", "OpenSent")
        )

    def routes(
        self, client: str | None = None, upstream: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """By prefix: what ``client`` sent, or what ``upstream`` sent (refused prefixes left
        out), or else what goes to the upstreams (as sent; one row per prefix)."""
        with self.client() as api:
            rows = api.routes(client=client, received_from=upstream)
        return {row["prefix"]: row for row in rows if not row["reason"]}

    def exported(self, upstream: str | None = None) -> list[dict[str, Any]]:
        """What goes to each upstream (or to ``upstream``), one row per upstream and prefix."""
        with self.client() as api:
            return api.routes(upstream=upstream)

    def rejected(self, client: str) -> dict[str, str]:
        """The prefixes ``client``'s import policy refused, with why."""
        with self.client() as api:
            return {r["prefix"]: r["reason"] for r in api.routes(client=client, rejected=True)}

    def http(self, path: str) -> tuple[int, str]:
        """GET ``path`` from the metrics listener, from inside the namespace."""
        script = (
            "import sys, urllib.request, urllib.error\n"
            f"url = 'http://{self.metrics_address}{path}'\n"
            "try:\n"
            "    r = urllib.request.urlopen(url, timeout=10)\n"
            "    print(r.status); print(r.read().decode())\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code); print(e.read().decode())\n"
        )
        out = self.host.run([sys.executable, "-c", script], timeout=20).stdout
        status, _, body = out.partition("\n")
        return int(status), body

    def metrics(self) -> str:
        return self.http("/metrics")[1]

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of one sample, or None when absent."""
        for line in self.metrics().splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            sample, _, value = line.rpartition(" ")
            metric_name, _, label_text = sample.partition("{")
            if metric_name != name:
                continue
            found = dict(
                part.split("=", 1) for part in label_text.rstrip("}").split(",") if "=" in part
            )
            if all(found.get(k, "").strip('"') == v for k, v in labels.items()):
                return float(value)
        return None

    def _is_established(self, name: str) -> bool:
        return bool(self.sessions().get(name, {}).get("state") == "ESTABLISHED")

    def wait_established(self, *names: str, timeout: float = 30.0) -> None:
        for name in names:
            wait_until(
                functools.partial(self._is_established, name),
                timeout=timeout,
                what=f"bgpmux session {name} established",
                logs_of=[self],
            )
