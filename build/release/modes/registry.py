"""Each `Mode` and the object that runs it: the one place a mode's name meets its behaviour."""

from __future__ import annotations

from collections.abc import Mapping

from build.release.modes import Mode
from build.release.modes.base import ReleaseMode
from build.release.modes.direct import DirectMode
from build.release.modes.native import NativeMode
from build.release.modes.script import ScriptMode

MODES: Mapping[Mode, ReleaseMode] = {Mode.SCRIPT: ScriptMode(), Mode.DIRECT: DirectMode(), Mode.NATIVE: NativeMode()}


def mode_for(mode: Mode | str) -> ReleaseMode:
    """The mode object for ``mode`` (a `Mode`, or its word once checked)."""
    return MODES[Mode(mode)]
