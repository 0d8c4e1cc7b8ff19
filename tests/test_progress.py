"""The one progress mechanism (common.progress): when it animates, what it writes into a log, the
heartbeat, colour by NO_COLOR / FORCE_COLOR; and the kit's plain reporter built on it."""

from __future__ import annotations

import io
import os
import re
import threading
import time

import pytest

from common.progress import Bars, BarStyle, Heartbeat, Lines, Ticker, duration, mb, on_terminal

COLOUR = re.compile(r"\x1b\[[0-9;]*3[0-9;]*m")  # a foreground colour (38;5;n, 38;2;r;g;b, 31, ...)


def test_formats() -> None:
    assert mb(3 * 1048576) == "3.0 MiB" and mb(0) == "0 B"
    assert duration(61) == "1m01s"


def test_only_a_real_terminal_outside_ci_animates() -> None:
    main, other = os.openpty()
    try:
        with os.fdopen(other, "w", closefd=False) as tty:
            assert on_terminal(tty, {"TERM": "xterm"})
            assert on_terminal(tty, {"TERM": "xterm", "FORCE_COLOR": "1", "NO_COLOR": "1"})
            assert not on_terminal(tty, {"TERM": "xterm", "CI": "true"})
            assert not on_terminal(tty, {"TERM": "dumb"})
        assert not on_terminal(io.StringIO(), {"TERM": "xterm", "FORCE_COLOR": "1"})  # colour is not a tty
    finally:
        os.close(main)
        os.close(other)


def _bars_output() -> str:
    out = io.StringIO()
    with Bars(out, BarStyle(detail=True)) as bars:
        bars.start("a.io/x:1", 100, detail="pulling")
        bars.update("a.io/x:1", completed=50, detail="pulling")
        bars.say("a line above the bars")
        bars.finish("a.io/x:1")
    return out.getvalue()


def test_bars_follow_force_color_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    forced = _bars_output()
    assert COLOUR.search(forced) and "a line above the bars" in forced and "pulling" in forced
    monkeypatch.setenv("NO_COLOR", "1")
    plain = _bars_output()
    assert not COLOUR.search(plain) and "a line above the bars" in plain


def test_lines_heartbeat_only_after_silence() -> None:
    out = io.StringIO()
    beats: list[float] = []

    def beat() -> str:
        beats.append(time.monotonic())
        return "still working"

    with Lines(out, every=0.5, beat=beat) as lines:
        for _ in range(10):  # a line every 0.05 s: never quiet for 0.5 s
            lines.say("busy")
            time.sleep(0.05)
        assert not beats
        time.sleep(1.2)
    said = out.getvalue().splitlines()
    assert said[:10] == ["busy"] * 10 and "still working" in said[10:]
    assert "\x1b" not in out.getvalue()
    count = len(beats)
    time.sleep(0.4)
    assert len(beats) == count  # stopped with the block


def test_heartbeat_touch_and_label(capsys: pytest.CaptureFixture[str]) -> None:
    with Heartbeat("make all", every=0.5) as beat:
        for _ in range(10):
            beat.touch()
            time.sleep(0.05)
        assert "still running" not in capsys.readouterr().err
        beat.label = "make all [Building go targets]"
        time.sleep(1.2)
    assert re.search(r"^\.\.\. make all \[Building go targets\]: still running, \d+s$", capsys.readouterr().err, re.M)


def test_ticker_stops_and_never_spins() -> None:
    calls: list[int] = []
    ticker = Ticker(lambda: calls.append(1), 0)
    ticker.start()
    time.sleep(0.2)
    ticker.stop()
    assert 0 < len(calls) <= 25  # the 10 ms floor, not a busy loop
    stopped = len(calls)
    time.sleep(0.1)
    assert len(calls) == stopped and not any(t.name == ticker._thread.name for t in threading.enumerate())


def test_kit_plain_reporter_lines_and_heartbeat() -> None:
    from kit.unpack import PlainReporter

    out = io.StringIO()
    report = PlainReporter(out, every=0.2)
    report.start("go", 3 * 1048576)
    report.advance("go", 1048576)
    time.sleep(0.7)
    report.advance("go", 1048576)
    report.finish("go")
    report.start("tree", 0)
    report.say("loaded 2 images")
    report.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "go: 3.0 MiB"
    assert "... still working: go 1.0 MiB of 3.0 MiB" in lines
    assert lines[-3:] == ["go: done (2.0 MiB)", "tree: started", "loaded 2 images"]


def _drain(fd: int) -> str:
    os.set_blocking(fd, False)
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks).decode(errors="replace")


def test_images_and_kit_draw_bars_on_a_terminal_and_lines_in_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """The choice is the same for both: bars on the terminal they were given (not stdout), lines elsewhere."""
    from images.progress import LineProgress, LiveProgress, make_progress
    from kit.progress import make_reporter
    from kit.unpack import PlainReporter

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    main, other = os.openpty()
    try:
        with os.fdopen(other, "w", closefd=False) as tty:
            with make_progress(tty) as progress:
                assert isinstance(progress, LiveProgress)
                progress("a.io/x:1", "pulling m/x:1", 1048576)
                progress("a.io/x:1", "pulled", 2097152)
            report = make_reporter(tty)
            assert isinstance(report, Bars)
            report.start("go", 2048)
            report.advance("go", 2048)
            report.finish("go")
            report.close()
        drawn = _drain(main)
        assert "a.io/x:1" in drawn and "pulled" in drawn and "go" in drawn and "\x1b[" in drawn
    finally:
        os.close(main)
        os.close(other)
    log = io.StringIO()
    assert isinstance(make_progress(log), LineProgress)
    plain = make_reporter(log)
    assert isinstance(plain, PlainReporter)
    plain.close()


def test_one_size_formatter():
    from common.units import size

    assert [size(n) for n in (0, 512, 1023, 1024, 3 * 1048576, 63_963_136, 1.5 * 2**30, 5 * 2**40, 3 * 2**50)] == [
        "0 B", "512 B", "1023 B", "1.0 KiB", "3.0 MiB", "61.0 MiB", "1.5 GiB", "5.0 TiB", "3072.0 TiB"]


def test_a_bar_counts_bytes_as_the_tables_do():
    """The image that is 61.0 MiB in the table is 61.0 MiB on its bar (rich's own column says 64.0 MB)."""
    from common.progress import Bars, BarStyle

    out = io.StringIO()
    bars = Bars(out, BarStyle(unit="bytes"))
    bars.start("img", 63_963_136)
    bars.update("img", completed=31_981_568)
    bars.close()
    assert "30.5 MiB/61.0 MiB" in out.getvalue() and " MB" not in out.getvalue()
