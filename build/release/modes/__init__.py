"""The release modes: `inv release --mode script|direct|native`.

`Mode` names them (the strings of the CLI, invoke.yaml and the report); `base.ReleaseMode` is what
the driver asks of each, phase by phase; one module per mode (`script`, `direct`, `native`) does the
work, and `registry` maps each `Mode` to its object. This module imports nothing of the release, so
the plan and the cache can name a mode without importing the modes.
"""

from __future__ import annotations

from enum import StrEnum

from common.errors import UsageError


class Mode(StrEnum):
    """How a release is built; the value is the word on the command line."""

    SCRIPT = "script"   # the tree's build/release.sh, as Kubernetes runs it
    DIRECT = "direct"   # the tree's kube-cross image run directly with the tree mounted
    NATIVE = "native"   # kbuild's builds on this host, then the tree's packaging

    @property
    def builds_in_container(self) -> bool:
        """Go runs inside the tree's kube-cross image (so the host's Go cache settings do not reach it)."""
        return self is not Mode.NATIVE

    @classmethod
    def lookup(cls, value: str) -> Mode | None:
        """The mode named ``value``, or None for a word that names none."""
        try:
            return cls(value)
        except ValueError:
            return None


def parse_mode(value: str) -> Mode:
    """``--mode`` (or release.mode in invoke.yaml) checked: one of the modes, else a usage error."""
    mode = Mode.lookup(value)
    if mode is None:
        raise UsageError(f"--mode {value!r}: choose one of {', '.join(m.value for m in Mode)}",
                         hint="native builds on this host, direct runs kube-cross, script runs build/release.sh")
    return mode
