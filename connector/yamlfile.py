"""YAML loading that remembers where each value came from.

Operators edit config and mappings by hand while the service runs; an error that says
``mappings/crm.yaml:12`` is fixed in seconds, one that says "invalid mapping" is not.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[Any, ...]


class YamlError(ValueError):
    """An error located in a file; ``str()`` is ``file:line: message``."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


@dataclass
class Located:
    """Parsed YAML plus the 1-based line of every value, keyed by its path of keys/indexes."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its nearest located parent."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get(())

    def error(self, loc: Loc, message: str) -> YamlError:
        return YamlError(self.path, self.line(loc), message)


def load(path: Path, transform: Callable[[str, Loc], str] | None = None) -> Located:
    """Load one YAML document; ``transform`` rewrites every string scalar (env expansion)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlError(path, None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        line = text_line_of(path, exc.start)
        raise YamlError(path, line, "not UTF-8 text") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlError(path, line, f"invalid YAML: {problem}") from None
    located = Located(path, None)
    if node is not None:
        located.data = _build(node, (), located, transform)
    return located


def _build(node: yaml.Node, loc: Loc, out: Located, transform: Callable[[str, Loc], str] | None) -> Any:
    out.lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, out)
            if key in result:
                raise YamlError(out.path, key_node.start_mark.line + 1, f"duplicate key {key!r}")
            result[key] = _build(value_node, (*loc, key), out, transform)
            # Point at the key's line: that is where an operator looks for "targets:".
            out.lines[(*loc, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*loc, i), out, transform) for i, item in enumerate(node.value)]
    value = _scalar(node, out)
    if transform is not None and isinstance(value, str):
        try:
            value = transform(value, loc)
        except MissingVariable as exc:
            raise YamlError(out.path, out.lines[loc], f"environment variable {exc.args[0]} is not set") from None
    return value


def _scalar(node: yaml.Node, out: Located) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise YamlError(out.path, node.start_mark.line + 1, "expected a plain value here")
    return _SCALARS.construct_object(node, deep=True)


# Only used to turn scalar nodes into int/bool/str the way SafeLoader would.
_SCALARS = yaml.SafeLoader("")


def text_line_of(path: Path, offset: int) -> int | None:
    """The 1-based line holding byte ``offset`` of ``path``."""
    try:
        return path.read_bytes()[:offset].count(b"\n") + 1
    except OSError:
        return None


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class MissingVariable(KeyError):
    pass


def expand_env(value: str, environ: os._Environ[str] | dict[str, str] | None = None) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; a missing VAR without default raises."""
    env = os.environ if environ is None else environ

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = env.get(name)
        if found is None or (found == "" and default is not None):
            if default is None:
                raise MissingVariable(name)
            return default
        return found

    return _VAR.sub(sub, value)
