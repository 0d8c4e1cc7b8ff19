"""Progress output off a terminal: a line per state change, a heartbeat, never escape codes."""

from __future__ import annotations

import io
import time

from images.driver import table
from images.progress import LineProgress
from images.sync import Outcome


def test_line_progress_reports_state_changes_only():
    out = io.StringIO()
    with LineProgress(out, heartbeat=60) as progress:
        progress("k8s.gcr.io/pause:3.4", "pulling m/pause:3.4", 0)
        progress("k8s.gcr.io/pause:3.4", "pulling m/pause:3.4", 1000)   # bytes only: no new line
        progress("k8s.gcr.io/pause:3.4", "retagged", 2000)
    lines = out.getvalue().splitlines()
    assert lines == ["k8s.gcr.io/pause:3.4: pulling m/pause:3.4", "k8s.gcr.io/pause:3.4: retagged"]
    assert "\x1b" not in out.getvalue()


def test_heartbeat_when_quiet():
    out = io.StringIO()
    with LineProgress(out, heartbeat=0.2) as progress:
        progress("a.io/x:1", "pulling m/x:1", 3 * 1048576)
        time.sleep(1.0)  # the beat thread wakes every min(heartbeat, 5 s)
    assert "still working: a.io/x:1 (pulling m/x:1, 3.0 MiB)" in out.getvalue()


def test_result_table_columns():
    rows = table([Outcome("k8s.gcr.io/pause:3.4", "retagged", "m.io/pause:3.4", "sha256:" + "a" * 64, 2097152),
                  Outcome("k8s.gcr.io/x:1", "failed")])
    assert rows[0].split() == ["IMAGE", "SOURCE", "DIGEST", "ACTION", "BYTES"]
    assert rows[1].split()[:2] == ["k8s.gcr.io/pause:3.4", "m.io/pause:3.4"] and rows[1].endswith("2.0 MiB")
    assert " failed " in rows[2]
