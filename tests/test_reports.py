"""report.html as plain data: everything escaped, sizes by the one formatter, digests shortened, the
timeline's bars placed by the spans' times, credentials redacted."""

from __future__ import annotations

from reports.html import render, timeline


def test_the_page_escapes_and_formats_what_it_shows():
    report = {"mode": "<script>alert(1)</script>", "tarballs": [
        {"name": "k.tar.gz", "size": 3 * 1048576, "sha256": "a" * 64}],
        "images": [{"digest": "sha256:" + "b" * 64, "pushed": {"reg/x:1": "sha256:" + "c" * 64}}],
        "log": "https://user:hunter2@example.com/x", "nested": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}
    page = render("t <b>", report, [])
    assert "<script>" not in page and "&lt;script&gt;" in page and "t &lt;b&gt;" in page
    assert "3.0 MiB" in page and f'title="{"a" * 64}"' in page and "sha256:bbbbbbbbbbbb…" in page
    assert "hunter2" not in page and "No timeline was recorded." in page


def test_the_timeline_places_each_span_on_the_run():
    events = [{"name": "run", "cat": "run", "ts": 0, "dur": 1_000_000, "args": {"outcome": "ok"}},
              {"name": "build", "cat": "release", "ts": 250_000, "dur": 500_000, "args": {"outcome": "KBError"}},
              {"name": "no times", "cat": "x"}]
    html = timeline(events)
    assert "left:25.000%;width:50.000%" in html and 'class="bar failed"' in html and "0.5s" in html
    assert "no times" not in html and html.count('class="span"') == 2
