"""deploy/ as kustomize: every kustomization renders with the pinned kubectl; the core kinds
pass ``kubernetes-validate --strict``; the PodMonitor and PrometheusRule have the shape
prometheus-operator's CRDs ask (a local subset: no package registry here ships those CRDs);
the DaemonSet carries every hardening the README promises; the rendered ConfigMap's config
passes ``bgpmux check-config`` with the downward API's variables, single- and dual-stack."""

from __future__ import annotations

import copy
import subprocess
import sys
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bgpmux.cli import main
from tests.manifests.render import DEPLOY, KUSTOMIZATIONS, ROOT, one, render, tool

CORE_KINDS = ("Namespace", "ServiceAccount", "ConfigMap", "DaemonSet")
# The first Kubernetes with status.hostIPs in the downward API by default (PodHostIPs: beta,
# on by default, in 1.29; GA in 1.30), and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
BASES = [DEPLOY / "base", DEPLOY / "overlays" / "multi-rack"]


def name(path: Path) -> str:
    return str(path.relative_to(DEPLOY))


def test_every_kustomization_is_found() -> None:
    assert [name(p) for p in KUSTOMIZATIONS] == [
        "base",
        "examples/calico-metallb",
        "grafana",
        "overlays/multi-rack",
    ]
    assert not list(DEPLOY.glob("*.yaml")), "deploy/ holds kustomizations only"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=name)
def test_renders(kustomization: Path) -> None:
    assert render(kustomization)


@pytest.mark.parametrize("kustomization", BASES, ids=name)
def test_bgpmux_objects(kustomization: Path) -> None:
    kinds = sorted(o["kind"] for o in render(kustomization))
    assert kinds == sorted([*CORE_KINDS, "PodMonitor", "PrometheusRule"])
    for obj in render(kustomization):
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "bgpmux", obj["kind"]


def test_grafana_dashboard_configmap(tmp_path: Path) -> None:
    configmap = one(render(DEPLOY / "grafana"), "ConfigMap")
    assert configmap["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert configmap["data"]["bgpmux.json"] == (DEPLOY / "grafana" / "bgpmux.json").read_text()
    path = tmp_path / "dashboard.yaml"
    path.write_text(yaml.safe_dump(configmap))
    done = kubernetes_validate(path, KUBERNETES_VERSIONS[-1])
    assert done.returncode == 0, done.stdout + done.stderr


def test_calico_and_metallb_are_only_an_example() -> None:
    kinds = {o["kind"] for o in render(DEPLOY / "examples" / "calico-metallb")}
    assert kinds == {"BGPConfiguration", "BGPPeer", "IPAddressPool", "BGPAdvertisement"}
    assert not kinds & {o["kind"] for o in render(DEPLOY / "base")}


def kubernetes_validate(path: Path, version: str) -> subprocess.CompletedProcess[str]:
    validate = tool("kubernetes-validate", "PyPI kubernetes-validate: pip install -e '.[test]'")
    return subprocess.run(
        [validate, "--strict", "--quiet", "-k", version, str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kustomization", BASES, ids=name)
def test_core_kinds_pass_kubernetes_validate_strict(
    kustomization: Path, version: str, tmp_path: Path
) -> None:
    core = [o for o in render(kustomization) if o["kind"] in CORE_KINDS]
    assert len(core) == len(CORE_KINDS)
    path = tmp_path / "core.yaml"
    path.write_text(yaml.safe_dump_all(core))
    done = kubernetes_validate(path, version)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_validate_strict_catches_an_unknown_field(tmp_path: Path) -> None:
    daemonset = copy.deepcopy(one(render(DEPLOY / "base"), "DaemonSet"))
    daemonset["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(daemonset))
    assert kubernetes_validate(path, KUBERNETES_VERSIONS[-1]).returncode != 0


# ------------------------------------------------------------------ prometheus-operator kinds

# The part of prometheus-operator's CRDs (monitoring.coreos.com/v1) that deploy/ uses, unknown
# fields refused as the API server's structural schemas do. Neither Debian nor PyPI ships the
# CRDs themselves, so this subset stands in for them.
_NAME = {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}
_DURATION = {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
}
PODMONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["selector"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": _STRINGS},
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                            "relabelings": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "sourceLabels": {"type": "array", "items": _NAME},
                                        "targetLabel": {"type": "string"},
                                        "regex": {"type": "string"},
                                        "replacement": {"type": "string"},
                                        "action": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
PROMETHEUSRULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _DURATION,
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["alert", "expr"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "alert": {"type": "string"},
                                        "expr": {"type": "string"},
                                        "for": _DURATION,
                                        "labels": _STRINGS,
                                        "annotations": _STRINGS,
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.mark.parametrize("kustomization", BASES, ids=name)
def test_podmonitor_and_prometheusrule_shape(kustomization: Path) -> None:
    objects = render(kustomization)
    jsonschema.validate(one(objects, "PodMonitor"), PODMONITOR)
    jsonschema.validate(one(objects, "PrometheusRule"), PROMETHEUSRULE)


def test_podmonitor_finds_the_pods_metrics_port() -> None:
    objects = render(DEPLOY / "base")
    monitor, template = one(objects, "PodMonitor"), pod_template(objects)
    labels = template["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"] for p in template["spec"]["containers"][0]["ports"]}
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports


def test_the_shape_check_refuses_a_misspelt_field() -> None:
    rule = copy.deepcopy(one(render(DEPLOY / "base"), "PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["fro"] = "5m"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rule, PROMETHEUSRULE)


# ------------------------------------------------------------------ the DaemonSet's hardening


def pod_template(objects: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    template: dict[str, Any] = one(objects, "DaemonSet")["spec"]["template"]
    return template


def test_daemonset_is_hardened() -> None:
    objects = render(DEPLOY / "base")
    pod = pod_template(objects)["spec"]
    (container,) = pod["containers"]
    context, pod_context = container["securityContext"], pod["securityContext"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["automountServiceAccountToken"] is False
    assert one(objects, "ServiceAccount")["automountServiceAccountToken"] is False
    assert pod_context["runAsNonRoot"] is True and context["runAsNonRoot"] is True
    assert pod_context["runAsUser"] == 65532 and pod_context["fsGroup"] == 65532
    assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= container.keys()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    # graceful restart: the grace is short beside the ToR's 120 s restart time
    assert 5 <= pod["terminationGracePeriodSeconds"] <= 30


def test_daemonset_downward_api_and_volumes() -> None:
    pod = pod_template(render(DEPLOY / "base"))["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"NODE_IP": "status.hostIP", "NODE_IPS": "status.hostIPs",
                   "NODE_NAME": "spec.nodeName"}  # fmt: skip
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert all("subPath" not in m for m in mounts.values()), "a subPath never updates"
    assert mounts["config"]["mountPath"] == "/etc/bgpmux"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "bgpmux"
    # the API socket's directory (/run/bgpmux) is created by bgpmux inside the pod's /run
    assert mounts["run"]["mountPath"] == "/run" and "emptyDir" in volumes["run"]
    assert container["args"] == ["run", "-c", "/etc/bgpmux/bgpmux.yaml"]


# ------------------------------------------------------------------ the ConfigMap's config

GATEWAYS = {4: IPv4Address("10.0.2.1"), 6: IPv6Address("2001:db8:2::1")}
NODES = {
    "single-stack": {"NODE_IP": "10.0.2.7", "NODE_IPS": "10.0.2.7"},
    "dual-stack": {"NODE_IP": "10.0.2.7", "NODE_IPS": "10.0.2.7,2001:db8:2::7"},
    "dual-stack, IPv6 primary": {"NODE_IP": "2001:db8:2::7", "NODE_IPS": "2001:db8:2::7,10.0.2.7"},
}


def config_file(kustomization: Path, tmp_path: Path) -> Path:
    configmap = one(render(kustomization), "ConfigMap")
    path = tmp_path / "bgpmux.yaml"
    path.write_text(configmap["data"]["bgpmux.yaml"])
    return path


@pytest.mark.parametrize("node", NODES)
@pytest.mark.parametrize("kustomization", BASES, ids=name)
def test_configmap_passes_check_config(
    kustomization: Path,
    node: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``bgpmux check-config`` as the pod runs it, on a node in rack 2 whose default route
    goes to 10.0.2.1 (the machine's own routes are not looked at)."""
    monkeypatch.setattr("bgpmux.cli.default_gateway", GATEWAYS.__getitem__)
    for variable in ("TOR_IP", "NODE_IP6"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in {**NODES[node], "NODE_NAME": "node-2-7"}.items():
        monkeypatch.setenv(variable, value)
    path = config_file(kustomization, tmp_path)
    assert main(["check-config", "-c", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("OK: "), out + err
    assert "applies, at 10.0.2.1" in out


def test_configmap_check_config_command(tmp_path: Path) -> None:
    """The ``bgpmux`` command itself, dual-stack, with TOR_IP naming the ToR."""
    path = config_file(DEPLOY / "base", tmp_path)
    env = {"PATH": "/usr/bin:/bin", **NODES["dual-stack"], "NODE_NAME": "n", "TOR_IP": "10.0.2.1"}
    done = subprocess.run(
        [sys.executable, "-m", "bgpmux", "check-config", "-c", str(path)],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK: 1 upstream")


def test_configmap_allows_the_node_as_behind_an_ebgp_tor(tmp_path: Path) -> None:
    """Every node is in one AS behind an eBGP ToR: other nodes' routes carry that AS, and only
    ``allow_node_as`` keeps them from being dropped as loops (README ``allow_node_as``)."""
    from bgpmux.config import load_config

    for kustomization in BASES:
        config = load_config(config_file(kustomization, tmp_path), env=NODES["dual-stack"])
        for upstream in config.upstreams:
            if upstream.asn != config.node.asn:
                assert upstream.allow_node_as, f"{name(kustomization)}: {upstream.name}"
        assert config.node.address_v6 == ip_address("2001:db8:2::7")
        assert config.node.router_id == ip_address("10.0.2.7")


def test_probes_have_timeouts() -> None:
    """The kubelet's default probe timeout (1 s) fails a busy node's late answer: every probe
    sets its own, no longer than its period (README "Install on a cluster")."""
    (container,) = pod_template(render(DEPLOY / "base"))["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container[probe]
        assert 2 <= spec.get("timeoutSeconds", 1) <= spec["periodSeconds"], probe
    assert container["readinessProbe"]["timeoutSeconds"] == 5


# The route count the DaemonSet's memory limit is sized on (README "Resources, measured":
# make bench's peak RSS at 100k routes, 433 MiB with the exabgp engine, under 512Mi).
LIMIT_ROUTES, LIMIT_MEMORY = 100_000, "512Mi"


@pytest.mark.parametrize("kustomization", BASES, ids=name)
def test_upstream_max_prefixes_fit_the_memory_limit(kustomization: Path, tmp_path: Path) -> None:
    """A ToR leaking a full table must not OOMKill bgpmux on every node at once: each upstream
    has a ``max_prefixes``, and with the clients' they stay within the routes the memory limit
    was sized on."""
    from bgpmux.config import load_config

    (container,) = pod_template(render(DEPLOY / "base"))["spec"]["containers"]
    assert container["resources"]["limits"]["memory"] == LIMIT_MEMORY
    config = load_config(config_file(kustomization, tmp_path), env=NODES["dual-stack"])
    clients = sum(client.max_prefixes for client in config.clients)
    for upstream in config.upstreams:
        assert upstream.max_prefixes is not None, upstream.name
        # a node uses one upstream per rack (node_cidrs): each must fit with the clients
        assert upstream.max_prefixes + clients <= LIMIT_ROUTES, upstream.name


def test_multi_rack_clients_equal_the_base() -> None:
    """deploy/overlays/multi-rack/bgpmux.yaml copies the base's ``clients`` block (a ConfigMap
    key is one whole file): the two rendered configs must not drift apart."""
    blocks = [
        yaml.safe_load(one(render(kustomization), "ConfigMap")["data"]["bgpmux.yaml"])["clients"]
        for kustomization in BASES
    ]
    assert blocks[0] == blocks[1]
