"""Reading `inv doctor`'s table: each check's row with its continuation lines (the wrapped detail and
the `fix:` lines under it) joined into one text, keyed by the check's name."""

from __future__ import annotations

import re


def doctor_rows(stdout: str) -> dict[str, str]:
    """{name: "name STATUS NEEDED detail … fix: …"} for every check in the table."""
    rows: dict[str, str] = {}
    name = None
    for line in stdout.splitlines()[1:]:
        if not line.strip():
            continue
        if line[0].isspace() and name is not None:
            rows[name] += " " + line.strip()
            continue
        head = re.match(r"(.+?)\s{2,}(ok|MISSING|WARN)\s", line + " ")
        name = head.group(1).strip() if head else line.strip()  # a long name stands on a line of its own
        rows[name] = line.strip()
    return rows
