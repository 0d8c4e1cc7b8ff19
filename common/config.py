"""kbuild's keys in invoke's config files, checked before a task uses them.

invoke merges ``/etc/invoke.yaml``, ``~/.invoke.yaml``, the project's
``invoke.yaml`` (beside tasks.py), ``INVOKE_*`` variables and ``-f FILE``.
It parses them but knows nothing of what kbuild expects, so ``kube: {root: 5}``
would reach the tasks as a number. ``check`` looks at each source on its own,
so the message names the file that holds the bad value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from common.errors import UsageError


class ConfigError(UsageError):
    """A config file kbuild reads is malformed or holds a value of the wrong type."""


def _str_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


def _str_or_list(value: object) -> bool:
    return value is None or isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value))


# section -> key -> (accepts, what a good value looks like)
SCHEMA: dict[str, dict[str, tuple[Callable[[object], bool], str]]] = {
    "kube": {"root": (_str_or_none, "a path"), "url": (_str_or_none, "a repository URL or path")},
    "images": {"mirrors": (_str_or_list, "a list of registries"),
               "layout": (_str_or_none, "nested or flat")},
    "release": {"mode": (_str_or_none, "script, direct or native")},
    "cache": {"remote": (_str_or_none, "oci://HOST[:PORT]/REPO or s3://BUCKET/PREFIX"),
              "mode": (_str_or_none, "read or readwrite")},
}

_KEYS = set(SCHEMA) | {f"{s}.{k}" for s, keys in SCHEMA.items() for k in keys}

# invoke's levels, in merge order, as (attribute prefix, what to call it without a file).
_LEVELS = (("system", "/etc/invoke.yaml"), ("user", "~/.invoke.yaml"), ("project", "invoke.yaml"),
           ("env", "INVOKE_* environment variables"), ("runtime", "-f config file"))


def problems(data: object) -> Iterator[tuple[str, str]]:
    """(dotted key, what is wrong) for each kbuild key in one config source's data."""
    if data is None:
        return
    if not isinstance(data, Mapping):
        yield "(top level)", f"must be a mapping of keys, not {_show(data)}"
        return
    for section, keys in SCHEMA.items():
        if section not in data:
            continue
        value = data[section]
        if not isinstance(value, Mapping):
            yield section, f"must be a mapping ({section}: {{{next(iter(keys))}: ...}}), not {_show(value)}"
            continue
        for key, (accepts, wanted) in keys.items():
            if key in value and not accepts(value[key]):
                yield f"{section}.{key}", f"must be {wanted}, not {_show(value[key])}"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def sources(config: Any) -> Iterator[tuple[str, object]]:
    """(name, data) of each level of an invoke Config, in merge order; name is the file where there is one."""
    for level, fallback in _LEVELS:
        data = getattr(config, f"_{level}", None)
        path = getattr(config, f"_{level}_path", None)
        yield (str(path) if path else fallback), data


def check(config: Any) -> None:
    """Raise ConfigError naming the file and key of the first bad kbuild value in ``config``."""
    for name, data in sources(config):
        for key, what in problems(data):
            hint = (f"fix {key} in {name} (see the README for kbuild's config keys)" if key in _KEYS else
                    f"{name} must hold keys, e.g. `kube: {{root: /path/to/kubernetes}}`")
            raise ConfigError(f"{name}: {key} {what}", hint=hint)


def load_error(path: str, exc: BaseException) -> ConfigError:
    """A config file invoke could not parse, as one line naming the file, the line and the key."""
    mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[-1:]
    if isinstance(problem, list):
        problem = problem[0] if problem else type(exc).__name__
    where = ""
    if mark is not None:
        line = int(getattr(mark, "line", 0))
        where = f" at line {line + 1}"
        key = _key_at(path, line)
        if key:
            where += f" (key {key})"
    elif isinstance(exc, ValueError) and hasattr(exc, "lineno"):  # json.JSONDecodeError
        where = f" at line {exc.lineno}"
    return ConfigError(f"{path}: not a valid config file{where}: {problem}",
                       hint=f"fix or remove {path}")


_KEY = re.compile(r"^(\s*)([^\s#:'\"{}\[\],][^:#]*?)\s*:(\s|$)")


def _key_at(path: str, line: int) -> str | None:
    """The dotted YAML key whose block holds ``line`` (0-based), read from the file by indentation."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    keys: list[str] = []
    indent: int | None = None
    for text in reversed(lines[:line + 1]):
        m = _KEY.match(text)
        if not m:
            continue
        width = len(m.group(1))
        if indent is None or width < indent:
            keys.insert(0, m.group(2).strip())
            indent = width
            if width == 0:
                break
    return ".".join(keys) or None


def env_number(environ: Mapping[str, str], name: str, default: float, *, what: str = "a number",
               minimum: float = 0.0, maximum: float | None = None, whole: bool = False) -> float:
    """A numeric environment variable (``KBUILD_MIN_DISK_GB=10``), or ``default`` when unset or empty.

    Anything else than a finite number from ``minimum`` to ``maximum`` (a whole one with ``whole``)
    is a ``UsageError`` (exit 2) naming the variable, its value and what is expected.
    """
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw) if not whole else float(int(raw, 10))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum:g} or more" if maximum is None else f"from {minimum:g} to {maximum:g}"
        kind = "a whole number" if whole else "a number"
        raise UsageError(f"{name}={raw!r}: expected {kind} {bounds} ({what})",
                         hint=f"e.g. {name}={default:g}, or unset it for the default ({default:g})")
    return value


STALL_ENV = "KBUILD_STALL_SECONDS"
DEFAULT_STALL_SECONDS = 60.0


def stall_seconds(environ: Mapping[str, str]) -> float:
    """KBUILD_STALL_SECONDS: how long a transfer (engine, registry, git) may go without data (default 60)."""
    raw = environ.get(STALL_ENV, "").strip()
    if not raw:
        return DEFAULT_STALL_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{STALL_ENV}={raw[:40]!r}: expected a positive number of seconds",
                         hint=f"unset it for the default ({DEFAULT_STALL_SECONDS:g}), or raise it for a slow link, "
                              f"e.g. {STALL_ENV}=300")
    return value
