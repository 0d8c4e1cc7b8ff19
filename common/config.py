"""kbuild's keys in invoke's config files, checked before a task uses them.

invoke merges ``/etc/invoke.yaml``, ``~/.invoke.yaml``, the project's
``invoke.yaml`` (beside tasks.py), ``INVOKE_*`` variables and ``-f FILE``.
It parses them but knows nothing of what kbuild expects, so ``kube: {root: 5}``
would reach the tasks as a number. ``check`` looks at the merged config and at
each file on its own (re-read with invoke's own parsers, found where invoke
looks for them), so the message names the file that holds the bad value.
"""

from __future__ import annotations

import json
import math
import os
import re
import runpy
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO

from common.errors import KBError, PathError, UsageError, file_op


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

# At each level invoke tries these suffixes, in this order, and reads the first file that exists.
SUFFIXES = ("yaml", "yml", "json", "py")


@dataclass(frozen=True)
class ConfigFile:
    """One level of invoke's config files ("system", "user", "project", "runtime") and the paths it tries."""

    level: str
    paths: tuple[str, ...]


def config_files(project: str | os.PathLike[str] | None, argv: Sequence[str],
                 environ: Mapping[str, str]) -> list[ConfigFile]:
    """The files invoke reads for this command line, in merge order: /etc, ~, the project's (beside
    tasks.py), then -f (or INVOKE_RUNTIME_CONFIG). INVOKE_* variables, merged between the last two,
    need no check: invoke makes each a string, and every kbuild key takes a string."""
    def suffixed(stem: str) -> tuple[str, ...]:
        return tuple(os.path.expanduser(f"{stem}.{suffix}") for suffix in SUFFIXES)

    files = [ConfigFile("system", suffixed("/etc/invoke")), ConfigFile("user", suffixed("~/.invoke"))]
    if project is not None:
        files.append(ConfigFile("project", suffixed(os.path.join(project, "invoke"))))
    runtime = runtime_path(argv, environ)
    if runtime:
        files.append(ConfigFile("runtime", (os.path.expanduser(runtime),)))
    return files


def runtime_path(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The -f/--config file of ``argv`` (parsed by invoke's own parser and core flags), else INVOKE_RUNTIME_CONFIG."""
    from invoke.exceptions import ParseError
    from invoke.parser import Parser
    from invoke.program import Program

    try:
        core = Parser(initial=Program().initial_context, ignore_unknown=True).parse_argv(list(argv[1:]))
        value = core[0].args.config.value if core else None
    except ParseError:  # not an inv command line (pytest's own, say): no -f
        value = None
    return str(value) if value else environ.get("INVOKE_RUNTIME_CONFIG") or None


def setting_dir(project: str | os.PathLike[str] | None, argv: Sequence[str], environ: Mapping[str, str],
                section: str, key: str, value: object) -> Path | None:
    """The directory of the config file whose ``section.key`` holds ``value`` (the last one invoke merges:
    -f, the project's, ~, /etc); None when no file holds it (an INVOKE_* variable set it). A relative
    path in a config file is relative to that file, as git's and most tools' are."""
    for config in reversed(config_files(project, argv, environ)):
        try:
            found = read_file(config, run_python=False)
        except KBError:
            continue  # check() names a broken file before any task runs
        if found is None:
            continue
        path, data = found
        held = data.get(section) if isinstance(data, dict) else None
        if isinstance(held, dict) and held.get(key) == value:
            return Path(path).parent
    return None


def read_file(config: ConfigFile, *, run_python: bool = True) -> tuple[str, object] | None:
    """(path, data) of the file invoke reads at this level, parsed as invoke parses it; None for none.

    A file that can't be opened or parsed is a KBError naming it. A Python config file is run only
    with ``run_python`` (invoke ran it already; running it again may not be free of side effects).
    """
    for path in config.paths:
        suffix = os.path.splitext(path)[1].lstrip(".")
        if suffix not in SUFFIXES:  # invoke refuses it before looking for it, in these words
            raise load_error(path, ValueError(f"Config files of type {suffix!r} (from file {path!r}) are not "
                                              f"supported! Please use one of: {SUFFIXES!r}"))
        if suffix == "py":  # invoke reads a missing one as empty
            return (path, _run_python(path)) if run_python and os.path.exists(path) else None
        try:
            stream = open(path)  # as invoke opens it (its default encoding too)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise PathError(exc, "open", path) from exc
        with stream, file_op("read", path):
            return path, _parse(stream, path)
    return None


def _parse(stream: IO[str], path: str) -> object:
    import yaml

    try:
        return json.load(stream) if path.endswith(".json") else yaml.safe_load(stream)
    except OSError:
        raise
    except Exception as exc:  # whatever the parser refused (YAMLError, JSONDecodeError, a bad byte)
        raise load_error(path, exc) from exc


def _run_python(path: str) -> dict[str, object]:
    try:
        found = runpy.run_path(path)
    except Exception as exc:  # the file's own error, as invoke met it
        raise load_error(path, exc) from exc
    data = {key: value for key, value in found.items() if not key.startswith("__")}
    for key, value in data.items():
        if isinstance(value, ModuleType):
            raise ConfigError(f"{path}: not a valid config file: {key!r} is a module, not a config value",
                              hint=f"fix or remove {path}")
    return data


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


def _refuse(name: str, data: object) -> None:
    for key, what in problems(data):
        hint = (f"fix {key} in {name} (see the README for kbuild's config keys)" if key in _KEYS else
                f"{name} must hold keys, e.g. `kube: {{root: /path/to/kubernetes}}`")
        raise ConfigError(f"{name}: {key} {what}", hint=hint)


def check(merged: Mapping[str, object], files: Sequence[ConfigFile]) -> None:
    """Raise ConfigError naming the file and key of the first bad kbuild value, files in merge order.

    ``merged`` is invoke's merged config; ``files`` are re-read to name the one at fault (a Python
    config file only when the merged config is bad).
    """
    bad = any(True for _ in problems(merged))
    for config in files:
        found = read_file(config, run_python=bad)
        if found is not None:
            _refuse(*found)
    if bad:
        _refuse("invoke's merged config", merged)


def fault(files: Sequence[ConfigFile]) -> KBError | None:
    """What is wrong with the config files invoke reads (unopenable, unparsable, a bad value), or None."""
    try:
        for config in files:
            found = read_file(config)
            if found is not None:
                _refuse(*found)
    except KBError as exc:
        return exc
    return None


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
