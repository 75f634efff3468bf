"""``python -m tests.image --image IMAGE --config FILE``: what ``make image-test`` runs.

Runs the image with podman (runc, cgroupfs: what this kind of machine supports) and checks:
``bgpmux version``; ``check-config`` on the shipped config (a ConfigMap's ``bgpmux.yaml``, or the
file itself) with the downward-API variables set; a numeric non-root user; a read-only root
filesystem that bgpmux writes only under /run/bgpmux; and, per engine, ``bgpmux run`` of that
config inside a network namespace this test creates (podman ``--network ns:``) reaching
Established with a real BIRD ToR in a second namespace, judged from ``bgpmux status`` in the
container, /metrics and BIRD. Prints each process's idle RSS and PSS once Established. Anything
missing (podman, BIRD, root, the image) is a failure, never a skip. Exit status 0 when every
check passed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bgpmux.config import parse_config
from bgpmux.config_types import Endpoint
from lab.bird import Bird
from lab.model import Neighbor
from lab.netns import Host, Topology

UID = 65532
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
RUN = [
    "run", "--rm", "--read-only", "--read-only-tmpfs=false",
    "--tmpfs", "/run/bgpmux:rw,mode=0700,U",  # owned by the image's user
    "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1024:1024",
]  # fmt: skip
NODE, TOR = "10.0.0.2", "10.0.0.1"  # inside the test's namespaces only
ENV = {"NODE_IP": NODE, "NODE_IPS": NODE, "NODE_NAME": "image-test", "TOR_IP": TOR}
ESTABLISHED_TIMEOUT = 60.0
IDLE_SETTLE = 10.0  # seconds after Established before RSS is read


class Failed(Exception):
    """A check failed; the message says which and why."""


def podman(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise Failed(f"podman {' '.join(args)}: exit {result.returncode}\n{result.stderr}")
    return result


def shipped_config(path: Path) -> str:
    """The bgpmux.yaml of a ConfigMap manifest, or the file itself when it is not one."""
    text = path.read_text()
    for document in yaml.safe_load_all(text):
        if isinstance(document, dict) and document.get("kind") == "ConfigMap":
            return str(document["data"]["bgpmux.yaml"])
    return text


def with_engine(text: str, engine: str) -> str:
    if re.search(r"^engine:", text, flags=re.M):
        return re.sub(r"^engine:.*$", f"engine: {engine}", text, flags=re.M)
    return f"engine: {engine}\n{text}"


def env_flags() -> list[str]:
    return [arg for key, value in ENV.items() for arg in ("-e", f"{key}={value}")]


def check_static(image: str, config_dir: Path) -> None:
    out = podman(*RUN, image, "version").stdout.strip()
    print(f"ok  bgpmux version: {out}")
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    uid = podman(*RUN, "--entrypoint", "id", image, "-u").stdout.strip()
    if not user or user.split(":")[0] in ("0", "root") or uid != str(UID):
        raise Failed(f"the image runs as {user!r} (id -u: {uid}), not the non-root {UID}")
    print(f"ok  USER {user}, id -u {uid}")
    probe = "touch /opt/bgpmux/probe 2>&1; touch /run/bgpmux/probe && echo run-writable"
    out = podman(*RUN, "--entrypoint", "/bin/sh", image, "-c", probe, check=False).stdout
    if "Read-only file system" not in out or "run-writable" not in out:
        raise Failed(f"root filesystem not read-only, or /run/bgpmux not writable: {out!r}")
    print("ok  read-only root filesystem; /run/bgpmux writable")
    mount = ["-v", f"{config_dir}:/etc/bgpmux:ro", *env_flags()]
    result = podman(*RUN, *mount, image, "check-config", "-c", "/etc/bgpmux/bgpmux.yaml")
    print(f"ok  check-config: {result.stdout.strip().splitlines()[0]}")


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from /proc."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):  # ended meanwhile
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def memory(pid: int) -> tuple[str, float, float]:
    """(command line, RSS, PSS) of ``pid``, in MiB (PSS shares the pages the processes share:
    the interpreter and libraries of bgpmux, ExaBGP and the relay)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        fields[key] = int(value.split()[0]) / 1024
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return argv, fields["Rss"], fields["Pss"]


def established(name: str, upstream: str) -> bool:
    result = podman("exec", name, "bgpmux", "status", check=False)
    return any(
        line.split()[:1] == [upstream] and "ESTABLISHED" in line.split()
        for line in result.stdout.splitlines()
    )


def http_get(node: Host, url: str) -> tuple[int, str]:
    """(status, body) of a GET on ``url`` from inside ``node``'s namespace."""
    script = (
        "import sys, urllib.request, urllib.error\n"
        "try:\n"
        "    r = urllib.request.urlopen(sys.argv[1], timeout=10); print(r.status)\n"
        "    print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code); print(e.read().decode())\n"
    )
    out = node.run([sys.executable, "-c", script, url], timeout=20).stdout
    status, _, body = out.partition("\n")
    return int(status), body


def check_http(node: Host, listen: Endpoint, upstream: str) -> None:
    """/healthz says 200 and /metrics has the upstream's session up."""
    status, body = http_get(node, f"http://{listen}/healthz")
    if status != 200:
        raise Failed(f"/healthz: {status} {body}")
    metrics = http_get(node, f"http://{listen}/metrics")[1]
    wanted = f'bgpmux_session_up{{peer="{upstream}",role="upstream"}} 1.0'
    if wanted not in metrics.splitlines():
        raise Failed(f"/metrics lacks {wanted}:\n{metrics[:2000]}")


def check_missing_exabgp(image: str, netns: str, mounts: list[str]) -> None:
    """With exabgp hidden (/dev/null over it: not executable), ``bgpmux run`` names it and the
    fix and exits 1 (/healthz fails meanwhile: tests/unit/test_engine_programs.py)."""
    result = podman(
        *RUN, "--network", f"ns:/run/netns/{netns}", *mounts,
        "-v", "/dev/null:/opt/bgpmux/bin/exabgp:ro", image, "run", "-c", "/etc/bgpmux/bgpmux.yaml",
        check=False,
    )  # fmt: skip
    out = result.stdout + result.stderr
    if result.returncode != 1 or "exabgp not found in PATH" not in out or "pip install" not in out:
        raise Failed(f"exabgp missing: exit {result.returncode}, not the error wanted:\n{out}")
    print("ok  exabgp missing: bgpmux run names it and the fix, exits 1")


def check_run(image: str, text: str, engine: str, tag: str) -> float:
    """Run ``text`` with ``engine`` in a namespace until Established with a BIRD ToR; returns
    the idle PSS of its processes in MiB."""
    config = parse_config(text, env=ENV)
    upstream = config.upstreams[0]
    with Topology(tag=engine[:2], prefix="im") as topo, tempfile.TemporaryDirectory() as tmp:
        node, tor = topo.add_host("node"), topo.add_host("tor")
        topo.link(node, [f"{NODE}/24"], tor, [f"{TOR}/24"])
        bird = Bird(tor, "tor", upstream.asn, TOR, [Neighbor(NODE, config.node.asn)])
        bird.start()
        Path(tmp, "bgpmux.yaml").write_text(text)
        os.chmod(tmp, 0o755)
        mounts = ["-v", f"{tmp}:/etc/bgpmux:ro", *env_flags()]
        if engine == "exabgp":
            check_missing_exabgp(image, node.netns, mounts)
        name = f"{tag}-{engine}"
        started = time.monotonic()
        podman(
            *RUN, "-d", "--name", name, "--network", f"ns:/run/netns/{node.netns}", *mounts,
            image, "run", "-c", "/etc/bgpmux/bgpmux.yaml",
        )  # fmt: skip
        try:
            deadline = started + ESTABLISHED_TIMEOUT
            while not established(name, upstream.name):
                if time.monotonic() > deadline:
                    logs = podman("logs", name, check=False)
                    raise Failed(
                        f"{engine}: {upstream.name} not Established in {ESTABLISHED_TIMEOUT:.0f}"
                        f" s\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}\nBIRD: "
                        + bird.protocol_info(bird.protocol_name(NODE))
                    )
                time.sleep(0.5)
            took = time.monotonic() - started
            state = bird.neighbor_state(NODE)
            print(f"ok  {engine}: {upstream.name} Established in {took:.1f} s (BIRD: {state})")
            check_http(node, config.metrics_listen, upstream.name)
            print(f"ok  {engine}: /healthz 200; /metrics bgpmux_session_up 1 for {upstream.name}")
            time.sleep(IDLE_SETTLE)
            if not established(name, upstream.name):
                raise Failed(f"{engine}: {upstream.name} went down while idle")
            pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout)
            rss = pss = 0.0
            for child in descendants(pid):
                argv, child_rss, child_pss = memory(child)
                rss, pss = rss + child_rss, pss + child_pss
                print(f"    RSS {child_rss:5.1f} MiB  PSS {child_pss:5.1f} MiB  {argv[:90]}")
            print(f"ok  {engine}: idle RSS {rss:.1f} MiB, PSS {pss:.1f} MiB in all")
            stats = podman("stats", "--no-stream", "--format", "{{.MemUsage}}", name, check=False)
            print(f"    podman stats (the container's memory cgroup): {stats.stdout.strip()}")
            return pss
        finally:
            podman("rm", "-f", "-t", "5", name, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--config", type=Path, required=True, help="the shipped ConfigMap")
    parser.add_argument("--engines", default="exabgp,native,gobgp")
    args = parser.parse_args()
    missing = [tool for tool in ("podman", "runc", "bird") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    if missing:
        print(f"FAIL: the image test needs {', '.join(missing)}", file=sys.stderr)
        return 1
    started = time.monotonic()
    tag = f"im{os.getpid() % 100000}"
    try:
        if podman("image", "exists", args.image, check=False).returncode != 0:
            raise Failed(f"no image {args.image}: run `make image`")
        size = podman("image", "inspect", "--format", "{{.Size}}", args.image).stdout.strip()
        print(f"image {args.image}: {int(size) / 1e6:.1f} MB")
        text = shipped_config(args.config)
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "bgpmux.yaml").write_text(text)
            os.chmod(tmp, 0o755)
            check_static(args.image, Path(tmp))
        for engine in args.engines.split(","):
            check_run(args.image, with_engine(text, engine), engine, tag)
    except (Failed, RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print(f"image test passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
