"""Network namespaces joined by veth pairs, and the processes run inside them.

Safety: every namespace and interface made here lives inside namespaces this module created;
the root namespace is never touched. Every process started is tracked and ended by PID.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

IP = "/usr/sbin/ip" if Path("/usr/sbin/ip").exists() else "/sbin/ip"
TERM_GRACE_SECONDS = 5.0
KILL_GRACE_SECONDS = 3.0
FORBIDDEN_NETWORK = ipaddress.ip_network("192.0.2.0/24")  # the machine's uplink


def _ip(*args: str, timeout: float = 10) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, text=True, timeout=timeout)


def _check_address(addr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    interface = ipaddress.ip_interface(addr)
    if interface.version == 4 and interface.network.overlaps(FORBIDDEN_NETWORK):
        raise ValueError(f"{addr}: 192.0.2.0/24 is the machine's uplink, never use it in tests")
    return interface


def end_process(proc: subprocess.Popen[bytes], *, term_grace: float = TERM_GRACE_SECONDS) -> None:
    """SIGTERM, wait a bounded time, then SIGKILL. Only ever signals this PID."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=term_grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=KILL_GRACE_SECONDS)
    except ProcessLookupError:
        pass


class Host:
    """One network namespace with its own scratch directory."""

    def __init__(self, topology: Topology, name: str, netns: str, workdir: Path) -> None:
        self.topology = topology
        self.name = name
        self.netns = netns
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        self._link_count = 0

    def __repr__(self) -> str:
        return f"Host({self.name!r}, netns={self.netns!r})"

    def _exec_prefix(self) -> list[str]:
        return [IP, "netns", "exec", self.netns]

    def run(
        self, argv: list[str], check: bool = True, timeout: float = 10
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self._exec_prefix(), *argv], capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{self.netns}: {' '.join(argv)} exited {result.returncode}\n"
                f"stdout: {result.stdout.strip()}\nstderr: {result.stderr.strip()}"
            )
        return result

    def spawn(
        self, argv: list[str], log_name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process in this namespace; stdout+stderr go to workdir/log_name."""
        log_path = self.workdir / log_name
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [*self._exec_prefix(), *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=self.workdir,
            )
        # `ip netns exec` execs the command, so the PID is the daemon's own.
        self.processes.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc not in self.processes:
            raise ValueError(f"{self.name}: refusing to signal a process this host did not start")
        if proc.poll() is None:
            proc.send_signal(sig)

    def add_address(self, addr: str, dev: str = "lo") -> None:
        interface = _check_address(addr)
        extra = ["nodad"] if interface.version == 6 else []
        self.run([IP, "addr", "add", addr, "dev", dev, *extra])

    def next_ifname(self) -> str:
        self._link_count += 1
        return f"eth{self._link_count}"

    def close(self) -> None:
        for proc in reversed(self.processes):
            end_process(proc)
        self.processes.clear()


class Topology:
    """Context manager owning namespaces, veth pairs, processes and temp dirs of one test."""

    def __init__(self, tag: str | None = None, prefix: str = "bmx") -> None:
        # Namespace names are short and unique per run: prefix + tag + pid + random. Suites
        # that run beside others pick their own prefix (the soak uses "soak").
        suffix = secrets.token_hex(3)
        self.tag = f"{prefix}{tag or ''}{os.getpid() % 10000}{suffix}"[:24]
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.tag}-"))
        self.hosts: dict[str, Host] = {}
        self._closed = False

    def __enter__(self) -> Topology:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def add_host(self, name: str) -> Host:
        if name in self.hosts:
            raise ValueError(f"host {name!r} already exists")
        netns = f"{self.tag}-{name}"
        _ip("netns", "add", netns)
        workdir = self.workdir / name
        workdir.mkdir()
        host = Host(self, name, netns, workdir)
        self.hosts[name] = host
        host.run([IP, "link", "set", "lo", "up"])
        return host

    def link(
        self, host_a: Host, addrs_a: list[str], host_b: Host, addrs_b: list[str]
    ) -> tuple[str, str]:
        """A veth pair with each end created directly inside its namespace, addressed and up."""
        for host in (host_a, host_b):
            if host.topology is not self:
                raise ValueError(f"{host} belongs to another topology")
        for addr in (*addrs_a, *addrs_b):
            _check_address(addr)
        if_a, if_b = host_a.next_ifname(), host_b.next_ifname()
        if host_a is host_b:
            if_b = host_b.next_ifname()
        _ip(
            "link", "add", if_a, "netns", host_a.netns,
            "type", "veth", "peer", "name", if_b, "netns", host_b.netns,
        )  # fmt: skip
        for host, ifname, addrs in ((host_a, if_a, addrs_a), (host_b, if_b, addrs_b)):
            for addr in addrs:
                host.add_address(addr, dev=ifname)
            host.run([IP, "link", "set", ifname, "up"])
        return if_a, if_b

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for host in self.hosts.values():
            try:
                host.close()
            except Exception as error:  # keep cleaning up the rest
                errors.append(f"{host.name}: {error}")
        for host in self.hosts.values():
            # Deleting the namespace also deletes the veth ends inside it.
            for _ in range(3):
                result = subprocess.run(
                    [IP, "netns", "delete", host.netns], capture_output=True, text=True, timeout=10
                )
                if result.returncode == 0:
                    break
                time.sleep(0.2)
            else:
                errors.append(f"netns delete {host.netns}: {result.stderr.strip()}")
        shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise RuntimeError("topology cleanup incomplete: " + "; ".join(errors))
