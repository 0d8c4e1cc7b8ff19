"""`report.html` beside a release's or a CI run's JSON report: one self-contained page (no script, no
network, inline style) to look at — the timeline of the run (the trace's spans as bars), then every part
of the report: the tarballs, the binaries, the images, the phases, each list as a table. Sizes are shown
by the one size formatter; digests shortened with the full one in the cell's title."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1b1f24; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.timeline { width: 100%; border: 1px solid #d0d7de; }
.span { display: flex; align-items: center; height: 20px; font-size: 12px; }
.label { width: 34%; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; padding: 0 6px; }
.track { position: relative; flex: 1; height: 14px; background: #f6f8fa; }
.bar { position: absolute; height: 14px; min-width: 2px; background: #0969da; }
.bar.failed { background: #cf222e; }
.secs { width: 70px; text-align: right; padding: 0 6px; }
"""
_DEPTH = 4


def _cell(key: str, value: object, depth: int) -> str:
    from common.units import size

    if isinstance(value, bool) or value is None:
        return html.escape(str(value).lower() if value is not None else "-")
    if isinstance(value, int | float) and key in ("size", "bytes", "bytes_up", "bytes_down"):
        return html.escape(size(value))
    if isinstance(value, str) and value.startswith("sha256:") and len(value) > 26:
        return f'<span title="{html.escape(value)}">{html.escape(value[:19])}…</span>'
    if isinstance(value, str) and key == "sha256" and len(value) > 16:
        return f'<span title="{html.escape(value)}">{html.escape(value[:12])}…</span>'
    if isinstance(value, Mapping) or (isinstance(value, list) and any(isinstance(v, Mapping) for v in value)):
        return _value(value, depth + 1)
    if isinstance(value, list):
        return html.escape(", ".join(str(v) for v in value))
    return html.escape(str(value))


def _value(value: object, depth: int) -> str:
    """A dict as a two-column table, a list of dicts as a table with a column per key, else text."""
    if depth > _DEPTH:
        return html.escape(str(value))
    if isinstance(value, Mapping):
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_cell(str(k), v, depth)}</td></tr>"
                       for k, v in value.items())
        return f"<table>{rows}</table>"
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        columns = list(dict.fromkeys(str(k) for v in value if isinstance(v, Mapping) for k in v))
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{_cell(c, v.get(c), depth)}</td>" for c in columns) + "</tr>"
                       for v in value if isinstance(v, Mapping))
        return f"<table><tr>{head}</tr>{body}</table>"
    return _cell("", value, depth)


def timeline(events: Sequence[Mapping[str, object]]) -> str:
    """The trace's complete events as bars along the run, in start order."""
    spans = [e for e in events if isinstance(e.get("ts"), int) and isinstance(e.get("dur"), int)]
    if not spans:
        return "<p>No timeline was recorded.</p>"
    start = min(int(str(e["ts"])) for e in spans)
    end = max(int(str(e["ts"])) + int(str(e["dur"])) for e in spans)
    total = max(end - start, 1)
    rows = []
    for e in sorted(spans, key=lambda e: (int(str(e["ts"])), -int(str(e["dur"])))):
        ts, dur = int(str(e["ts"])) - start, int(str(e["dur"]))
        args = e.get("args")
        failed = isinstance(args, Mapping) and args.get("outcome") not in (None, "ok")
        label = f"{e.get('name', '')} ({e.get('cat', '')})"
        rows.append(
            f'<div class="span"><div class="label" title="{html.escape(label)}">{html.escape(label)}</div>'
            f'<div class="track"><div class="bar{" failed" if failed else ""}" '
            f'style="left:{100 * ts / total:.3f}%;width:{100 * dur / total:.3f}%"></div></div>'
            f'<div class="secs">{dur / 1e6:.1f}s</div></div>')
    return f'<div class="timeline">{"".join(rows)}</div>'


def render(title: str, report: Mapping[str, object], events: Sequence[Mapping[str, object]]) -> str:
    from common.redact import redact_data

    redacted = redact_data(dict(report))
    data: Mapping[str, object] = redacted if isinstance(redacted, Mapping) else {}
    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping | list)}
    sections = [f"<h2>{html.escape(k)}</h2>{_value(v, 1)}" for k, v in data.items()
                if isinstance(v, Mapping | list) and v]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{_value(scalars, 1)}<h2>timeline</h2>{timeline(events)}"
            f"{''.join(sections)}</body></html>\n")


def write_beside(report_path: Path, root: Path, title: str, report: Mapping[str, object],
                 events: Sequence[Mapping[str, object]]) -> None:
    """``report.html`` in the JSON report's directory, and a line naming it. A page that can't be written
    is said in one line and fails nothing: the run it describes is done, its JSON report written."""
    from common.console import info
    from common.errors import KBError
    from common.outputs import write_file

    path = report_path.parent / "report.html"
    try:
        write_file(path, render(title, report, events), step="the HTML report", root=root)
    except KBError as exc:
        info(f"report.html not written: {exc.message}")
        return
    info(f"report.html: {path}")
