"""Running external commands: argument lists only, never a shell string."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from common.errors import CommandFailed, ToolError


def run(argv: Sequence[str], *, cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
        capture: bool = False, what: str | None = None, hint: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (a list) and raise ``CommandFailed`` on a non-zero exit.

    With ``capture`` the output is returned; otherwise it goes straight to the
    terminal (live), and stdin is closed so nothing can wait for input.
    """
    try:
        proc = subprocess.run(
            list(argv), cwd=cwd, env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL, text=True, errors="replace",  # a tool's bytes that are not UTF-8 stay shown
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
        )
    except FileNotFoundError as exc:
        if cwd is not None and str(exc.filename) == str(cwd):  # the directory to run in, not the program
            raise ToolError(f"cannot run {argv[0]} in {cwd}: the directory does not exist", hint=hint) from exc
        raise ToolError(f"{argv[0]}: not found", hint=hint) from exc
    if check and proc.returncode != 0:
        if capture and proc.stderr:
            tail = proc.stderr.strip().splitlines()[-5:]
            for line in tail:
                print(line, file=sys.stderr)
        raise CommandFailed(argv, proc.returncode, what=what, hint=hint)
    return proc


def merged_env(base: Mapping[str, str], overlay: Mapping[str, str | None]) -> dict[str, str]:
    """``base`` with ``overlay`` applied; a ``None`` value removes the key."""
    env = dict(base)
    for key, value in overlay.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def prepend_path(env: dict[str, str], directory: Path | str) -> None:
    """Put ``directory`` first on env's PATH (once)."""
    parts = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != str(directory)]
    env["PATH"] = os.pathsep.join([str(directory), *parts])
