"""Image references, mirror mapping and the little shell evaluator that reads build/common.sh."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import UsageError
from images.refs import check_mirror, mirror_ref, parse_ref
from workspace.shell import Vars, first_word


@pytest.mark.parametrize("text,registry,path,tag", [
    ("k8s.gcr.io/build-image/kube-cross:v1.15.5-1", "k8s.gcr.io", "build-image/kube-cross", "v1.15.5-1"),
    ("gcr.io/google_containers/pause:2.0", "gcr.io", "google_containers/pause", "2.0"),
    ("busybox", "docker.io", "library/busybox", "latest"),
    ("library/debian:bookworm", "docker.io", "library/debian", "bookworm"),
    ("127.0.0.1:5000/mirror/x:1", "127.0.0.1:5000", "mirror/x", "1"),
    ("localhost/a", "localhost", "a", "latest"),
    ("registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", "3.9"),
])
def test_parse_ref(text, registry, path, tag):
    ref = parse_ref(text)
    assert (ref.registry, ref.path, ref.tag) == (registry, path, tag)


@pytest.mark.parametrize("bad", ["", "UPPER/case:1", "a b", "-x", "x:", "x:tag with space", "k8s.gcr.io//x",
                                 "x;rm -rf /", "http://reg/x"])
def test_parse_ref_rejects(bad):
    with pytest.raises(UsageError):
        parse_ref(bad)


def test_short_names_match_what_docker_shows():
    assert parse_ref("busybox:1").short == "busybox:1"
    assert parse_ref("docker.io/foo/bar:1").short == "foo/bar:1"
    assert parse_ref("k8s.gcr.io/pause:3.2").short == "k8s.gcr.io/pause:3.2"


@pytest.mark.parametrize("good,clean", [("127.0.0.1:5000", "127.0.0.1:5000"),
                                        ("reg.example/mirror/", "reg.example/mirror"),
                                        ("localhost:5000/a/b", "localhost:5000/a/b")])
def test_check_mirror(good, clean):
    assert check_mirror(good) == clean


@pytest.mark.parametrize("bad", ["http://reg.example", "", "mirror", "reg.example/UP", "reg example", "-reg.io"])
def test_check_mirror_rejects(bad):
    with pytest.raises(UsageError):
        check_mirror(bad)


@pytest.mark.parametrize("ref,mirror,layout,expected", [
    ("k8s.gcr.io/build-image/kube-cross:v1.15.5-1", "127.0.0.1:5000", "nested",
     "127.0.0.1:5000/build-image/kube-cross:v1.15.5-1"),
    ("k8s.gcr.io/build-image/kube-cross:v1.15.5-1", "127.0.0.1:5000/k8s", "nested",
     "127.0.0.1:5000/k8s/build-image/kube-cross:v1.15.5-1"),
    ("k8s.gcr.io/build-image/kube-cross:v1.15.5-1", "reg.example/google_containers", "flat",
     "reg.example/google_containers/kube-cross:v1.15.5-1"),
    ("gcr.io/google_containers/pause:2.0", "reg.example/google_containers", "flat",
     "reg.example/google_containers/pause:2.0"),
    ("registry.k8s.io/pause:3.9", "127.0.0.1:5000/m", "nested", "127.0.0.1:5000/m/pause:3.9"),
])
def test_mirror_ref(ref, mirror, layout, expected):
    assert mirror_ref(parse_ref(ref), mirror, layout).name == expected


def test_mirror_layout_rejects_unknown():
    with pytest.raises(UsageError):
        mirror_ref(parse_ref("a.io/b:c"), "m.io", "sideways")


@pytest.mark.parametrize("text,word", [
    ('"$(cat "${KUBE_ROOT}/VERSION")" # comment', '"$(cat "${KUBE_ROOT}/VERSION")"'),
    ("abc def", "abc"), ("'a b' c", "'a b'"), ('"${X:-"q r"}" z', '"${X:-"q r"}"'), ('"open', None),
])
def test_first_word(text, word):
    assert first_word(text) == word


def test_vars_expand_like_bash(tmp_path: Path):
    (tmp_path / "VERSION").write_text("v1.2.3\n")
    script = tmp_path / "common.sh"
    script.write_text(
        'readonly REG="${REG:-k8s.gcr.io}"\n'
        'readonly BASE="${BASE_REG:-$REG/build-image}"\n'
        'readonly TAG="$(cat "${KUBE_ROOT}/VERSION")"\n'
        "local -r quoted='single ${NOT}'\n"
        'EMPTY=""\n'
        'D1="${EMPTY:-dflt}" D2="${EMPTY-dflt}"\n'
        'PLUS="${REG:+set}"\n'
        'ARR=(a b c)\n'
        'CMD="$(uname -a)"\n')
    v = Vars({}, tmp_path)
    v.read_file(script, "common.sh")
    assert v.values["REG"] == "k8s.gcr.io" and v.origin["REG"] == "common.sh:1"
    assert v.values["BASE"] == "k8s.gcr.io/build-image"
    assert v.values["TAG"] == "v1.2.3"
    assert v.values["quoted"] == "single ${NOT}"
    assert v.values["D1"] == "dflt"
    assert v.values["PLUS"] == "set"
    assert "ARR" not in v.values and "CMD" not in v.values  # arrays and commands are not evaluated
    env = Vars({"REG": "mirror.example", "BASE_REG": "other.example/x"}, tmp_path)
    env.read_file(script, "common.sh")
    assert env.values["REG"] == "mirror.example" and env.values["BASE"] == "other.example/x"


@pytest.mark.parametrize("detail,kind", [
    ("manifest unknown: manifest unknown", "not found"),
    ("pull access denied for x, repository does not exist or may require 'docker login'", "auth refused"),
    ("unauthorized: authentication required", "auth refused"),
    ('Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused', "unreachable"),
    ("Get https://nope.invalid/v2/: dial tcp: lookup nope.invalid: no such host", "unreachable"),
    ("something else", "failed"),
])
def test_classify_registry_errors(detail, kind):
    from images.engine import classify
    assert classify(detail) == kind


def test_failure_hint_prefers_the_most_specific():
    from images.driver import failure_hint
    from images.sync import Outcome
    assert "lock" in failure_hint([Outcome("a", error="m/a: serves sha256:1, lock wants sha256:2"),
                                   Outcome("b", error="m/b: not found (x)")])
    assert "docker login" in failure_hint([Outcome("a", error="m/a: auth refused (denied)")])
    assert failure_hint([Outcome("a", error="weird")]) is None
