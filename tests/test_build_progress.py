"""Progress of go builds (pure parts): which lines are go's -v package lines, the plain CI lines,
the history file whatever it holds, and that go's own output passes through unchanged."""

from __future__ import annotations

import io
import json

import pytest

from build.progress import Estimate, GoOutput, History, PlainDisplay, is_package_line
from common.progress import duration

# What go 1.27 prints on stderr for a failing `go build -v` (taken from a real run).
GO_ERRORS = [
    "# k8s.io/kubernetes/cmd/kubectl",
    "cmd/kubectl/kubectl.go:12:2: undefined: nosuch",
    "go: downloading go1.27.1 (linux/amd64)",
    "package k8s.io/nope is not in std (/usr/lib/go/src/k8s.io/nope)",
    "note: module requires Go 1.28",
    "",
]


@pytest.mark.parametrize("line", ["k8s.io/kubernetes/cmd/kube-apiserver", "runtime", "internal/abi",
                                  "github.com/onsi/ginkgo/v2/ginkgo", "k8s.io/component-base/logs/kube-log-runner",
                                  "gopkg.in/yaml.v2", "command-line-arguments"])
def test_package_lines(line):
    assert is_package_line(line)


@pytest.mark.parametrize("line", GO_ERRORS)
def test_go_messages_are_not_package_lines(line):
    assert not is_package_line(line)


def test_duration():
    assert [duration(s) for s in (0, 5, 59.9, 60, 90, 3600)] == ["0s", "5s", "59s", "1m00s", "1m30s", "60m00s"]


def test_plain_line_with_and_without_history():
    lines: list[str] = []
    with_history = PlainDisplay("kube-apiserver linux/amd64", Estimate(1930, 180), lines.append, io.StringIO(), 30)
    assert with_history.line(812, 90) == "kube-apiserver linux/amd64: 812/1930 packages, 1m30s, about 1m30s left"
    assert with_history.line(1930, 200) == "kube-apiserver linux/amd64: 1930/1930 packages, 3m20s"
    fresh = PlainDisplay("kubectl linux/arm64", None, lines.append, io.StringIO(), 30)
    assert fresh.line(3, 5) == "kubectl linux/arm64: 3 packages, 5s"
    fresh.update(1, 10)
    fresh.update(2, 31)
    fresh.update(3, 40)
    fresh.update(4, 61)
    assert lines == ["kubectl linux/arm64: 2 packages, 31s", "kubectl linux/arm64: 4 packages, 1m01s"]


@pytest.mark.parametrize("garbage", ["", "not json", "[]", "null", '"x"', '{"k": 5}', '{"k": {"packages": "x"}}',
                                     '{"k": {"packages": -1, "seconds": 3}}', '{"k": {"packages": 3}}'])
def test_history_of_any_shape_reads_as_no_estimate_and_is_rewritten(tmp_path, garbage):
    path = tmp_path / "progress.json"
    path.write_text(garbage)
    history = History(path)
    assert history.get("k") is None
    history.put("k", Estimate(10, 2.5))
    assert history.get("k") == Estimate(10, 2.5)
    assert json.loads(path.read_text())["k"] == {"packages": 10, "seconds": 2.5}


def test_history_in_a_missing_or_unwritable_place_is_no_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    history = History(blocker / "progress.json")  # parent is a file: cannot be created
    history.put("k", Estimate(1, 1))
    assert history.get("k") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_go_output_counts_packages_and_passes_the_rest_through():
    stream = io.StringIO()
    with GoOutput("kubectl linux/amd64", Estimate(3, 1), stream=stream, live=False, every=3600) as out:
        for line in ["runtime", "k8s.io/kubernetes/cmd/kubectl", *GO_ERRORS[:2]]:
            out.feed(line + "\n")
    assert out.packages == 2
    assert stream.getvalue().splitlines() == GO_ERRORS[:2]


def test_phase_clock_times_each_status_line():
    from build.progress import PhaseClock

    now = [100.0]
    clock = PhaseClock(lambda: now[0])
    assert clock.feed("some output") is None and clock.finish() is None
    assert clock.feed("+++ [0113 13:19:01] Building go targets for linux/amd64") is None
    assert clock.current == "Building go targets for linux/amd64"
    now[0] += 75
    assert clock.feed("    k8s.io/kubernetes/cmd/kube-apiserver (static)") is None
    assert clock.feed("+++ [0113 13:20:16] Building tarball: src") == \
        "+++ 1m15s for: Building go targets for linux/amd64"
    now[0] += 4
    assert clock.finish() == "+++ 4s for: Building tarball: src"
    assert clock.finish() is None


@pytest.mark.go
def test_build_shows_package_progress_and_remembers_the_count(sample_repo, go_toolchain):
    """Off a terminal: plain progress lines from go's -v package lines; the next build of the
    same target shows the count of the last one as its total. go's errors still get through."""
    import os

    from tests.conftest import inv, require

    require(go_toolchain is not None, "a Go toolchain")
    tree = sample_repo("gopath")
    env = {**os.environ, "KBUILD_PROGRESS_SECONDS": "0"}
    main = tree / "cmd/kubectl/kubectl.go"
    main.write_text(main.read_text() + "\n// progress test 1\n")
    first = inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", env=env, check=True)
    lines = [ln for ln in first.stderr.splitlines() if ln.startswith("kubectl linux/amd64: ")]
    assert lines and lines[0].startswith("kubectl linux/amd64: 1 packages"), first.stderr
    count = int(lines[-1].split(": ")[1].split()[0])
    history = json.loads((tree / "_output/local/.kbuild/progress.json").read_text())
    assert history["linux/amd64 build cmd/kubectl"]["packages"] == count
    main.write_text(main.read_text() + "\n// progress test 2\n")
    second = inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", env=env, check=True)
    assert any(ln.startswith("kubectl linux/amd64: 1/") and f"/{count} packages" in ln
               for ln in second.stderr.splitlines()), second.stderr
    # The package lines themselves are not echoed; a compile error is, unchanged.
    assert "k8s.io/kubernetes/cmd/kubectl\n" not in second.stderr
    main.write_text(main.read_text() + "\nfunc broken() { undefined_thing() }\n")
    failed = inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", env=env)
    assert failed.returncode != 0 and "undefined: undefined_thing" in failed.stderr


def test_live_bar_passes_go_output_through_the_console():
    """On a terminal the bar is rich's; go's own lines are printed through rich's console, above it."""
    stream = io.StringIO()
    with GoOutput("kubectl linux/amd64", Estimate(2, 1), stream=stream, live=True) as out:
        out.feed("runtime\n")
        out.feed("cmd/kubectl/kubectl.go:1:1: expected 'package'\n")
        out.feed("k8s.io/kubernetes/cmd/kubectl\n")
    assert out.packages == 2
    assert "cmd/kubectl/kubectl.go:1:1: expected 'package'" in stream.getvalue()
    assert "k8s.io/kubernetes/cmd/kubectl" not in stream.getvalue().replace("cmd/kubectl/kubectl.go", "")
