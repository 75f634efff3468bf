"""The files a configuration names (the upstreams' and the clients' TCP-MD5 password files),
checked before any session needs them, so that a bad one is refused at start with its field
named."""

from __future__ import annotations

import importlib.util
import shutil

from .config import Config, ConfigError
from .transport.md5 import MD5_KEY_MAX

GOBGPD = "gobgpd"  # the gobgp engine's program, looked up in PATH
EXABGP_UNQUOTABLE = "\"'\n;{}"  # ExaBGP's configuration cannot carry these in a password


def check_files(config: Config) -> None:
    """Check that every password file the config names is readable, not empty, at most
    ``MD5_KEY_MAX`` octets and, an upstream's with the exabgp engine, free of what ExaBGP's
    configuration cannot quote (ASCII with the gobgp engine); that the gobgp engine's stubs
    are in place, and gobgpd in PATH unless ``gobgp.external``; raises ConfigError listing
    every problem."""
    errors: list[tuple[str, str]] = []
    peers = [("upstreams", i, u.password_file) for i, u in enumerate(config.upstreams)]
    peers += [("clients", i, c.password_file) for i, c in enumerate(config.clients)]
    for section, i, path in peers:
        if path is None:
            continue
        where = f"{section}[{i}].password_file"
        try:
            password = path.read_bytes().strip()
        except OSError as e:
            errors.append((where, f"cannot read {path}: {e.strerror}"))
            continue
        if not password:
            errors.append((where, f"{path} is empty"))
        elif len(password) > MD5_KEY_MAX:
            msg = f"a TCP-MD5 key is at most {MD5_KEY_MAX} octets; {path} "
            errors.append((where, msg + f"holds {len(password)}"))
        elif (
            section == "upstreams" and config.engine == "exabgp" and not _exabgp_can_quote(password)
        ):
            msg = "the exabgp engine cannot pass a password with quotes, ';', '{', '}' or "
            errors.append((where, msg + "unprintable characters to ExaBGP"))
        elif section == "upstreams" and config.engine == "gobgp" and not password.isascii():
            errors.append((where, "the gobgp engine passes the TCP-MD5 key as text: ASCII only"))
    if config.engine == "gobgp" and (problem := gobgp_stubs_problem()) is not None:
        errors.append(("engine", problem))
    if config.engine == "gobgp" and not config.gobgp.external and shutil.which(GOBGPD) is None:
        missing = f"the gobgp engine starts {GOBGPD}, which is not in PATH (apt-get install "
        errors.append(("engine", missing + "gobgpd), unless gobgp.external is true"))
    if errors:
        raise ConfigError(errors)


GOBGP_STUBS = "bgpmux.engines.gobgp_api.gobgp_pb2_grpc"


def gobgp_stubs_problem() -> str | None:
    """Why the gobgp engine cannot run here (its gRPC stubs, generated at build time, are
    missing), None when they are in place."""
    try:
        found = importlib.util.find_spec(GOBGP_STUBS) is not None
    except ModuleNotFoundError:
        found = False
    if found:
        return None
    return (
        "the gobgp engine needs GoBGP's API stubs, generated at build time from Debian's "
        "golang-github-osrg-gobgp-dev .proto files and not shipped: run `make deps` in the "
        "source tree (or `python scripts/gobgp_stubs.py`, with grpcio-tools installed)"
    )


def _exabgp_can_quote(password: bytes) -> bool:
    try:
        text = password.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.isprintable() and not any(c in text for c in EXABGP_UNQUOTABLE)
