"""The one way kbuild shows a size: binary units, named as such (1 MiB = 1048576 bytes), on every bar,
table, line and report text, so one image is the same number on its bar and in the table."""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def size(nbytes: float) -> str:
    """0 → 0 B; 512 → 512 B; 3145728 → 3.0 MiB; 1610612736 → 1.5 GiB."""
    if nbytes < 1024:
        return f"{max(nbytes, 0):.0f} B"
    value = float(nbytes)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")
