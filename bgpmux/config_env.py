"""``${VAR}`` and ``${VAR:-default}`` in a config file, expanded from the environment before
the YAML is parsed, and the error every config problem is reported with."""

from __future__ import annotations

import re
from collections.abc import Mapping


class ConfigError(Exception):
    """Bad configuration; ``errors`` holds ``(dotted_path, message)`` pairs (path may be "")."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("\n".join(f"{p}: {m}" if p else m for p, m in errors))


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_COMMENT = re.compile(r"(?:^|\s)#")


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset ``${VAR}`` is an error.

    YAML comments (from a ``#`` at the start of a line or after whitespace) are left alone, so a
    commented-out line does not need its variables set.
    """
    errors: list[tuple[str, str]] = []
    lines = []
    for lineno, line in enumerate(text.splitlines(keepends=True), 1):

        def sub(m: re.Match[str], lineno: int = lineno) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            errors.append(("", f"line {lineno}: environment variable {name} is not set"))
            return ""

        comment = _COMMENT.search(line)
        cut = comment.start() if comment else len(line)
        lines.append(_VAR.sub(sub, line[:cut]) + line[cut:])
    if errors:
        raise ConfigError(errors)
    return "".join(lines)
