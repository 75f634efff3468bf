"""bgpmux itself as a lab daemon: run from this environment, queried over its API and /metrics."""

from __future__ import annotations

import functools
import sys
from typing import Any

import yaml

from bgpmux.cli import api_request

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

    def api(self, request: dict[str, Any]) -> Any:
        return api_request(self.api_path, request, timeout=30)

    def sessions(self) -> dict[str, dict[str, Any]]:
        return {peer["peer"]: peer for peer in self.api({"cmd": "status"})["peers"]}

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
        request: dict[str, Any] = {"cmd": "routes"}
        if client is not None:
            request["client"] = client
        if upstream is not None:
            request["upstream"] = upstream
        return {route["prefix"]: route for route in self.api(request)["routes"]}

    def rejected(self, client: str) -> dict[str, str]:
        reply = self.api({"cmd": "routes", "client": client})
        return {r["prefix"]: r["rejected"] for r in reply.get("rejected", [])}

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
