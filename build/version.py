"""Version stamps, computed exactly as hack/lib/version.sh does.

The rules are pure functions over strings (``semver_from_describe``,
``major_minor``, ``archive_values`` …); ``compute`` gathers the inputs from
git (GitPython), the tree and the environment.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from common.errors import KBError, TreeError, UsageError
from common.treefiles import read_text

FILE_KEYS = ("KUBE_GIT_COMMIT", "KUBE_GIT_TREE_STATE", "KUBE_GIT_VERSION", "KUBE_GIT_MAJOR", "KUBE_GIT_MINOR")
_SEMVER = re.compile(r"^v([0-9]+)\.([0-9]+)(\.[0-9]+)?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_MAJOR_MINOR = re.compile(r"^v([0-9]+)\.([0-9]+)(\.[0-9]+)?([-].*)?([+].*)?$")


@dataclass(frozen=True)
class VersionInfo:
    """The stamp values; empty strings where version.sh would leave a variable unset."""

    commit: str = ""
    tree_state: str = ""
    version: str = ""
    major: str = ""
    minor: str = ""
    build_date: str = ""
    source: str = ""   # where the values came from: git, archive, file

    def shell_lines(self) -> list[str]:
        """The KUBE_GIT_VERSION_FILE format (kube::version::save_version_vars)."""
        values = (self.commit, self.tree_state, self.version, self.major, self.minor)
        return [f"{k}='{v}'" for k, v in zip(FILE_KEYS, values, strict=True)]

    def as_json(self) -> str:
        data = {"major": self.major, "minor": self.minor, "gitVersion": self.version,
                "gitCommit": self.commit, "gitTreeState": self.tree_state,
                "buildDate": self.build_date, "source": self.source}
        return json.dumps(data, indent=2)

    def ldflag_values(self) -> list[tuple[str, str]]:
        """(key, value) pairs in the order kube::version::ldflags adds them."""
        pairs = [("buildDate", self.build_date)]
        if self.commit:
            pairs += [("gitCommit", self.commit), ("gitTreeState", self.tree_state)]
        if self.version:
            pairs.append(("gitVersion", self.version))
        if self.major and self.minor:
            pairs += [("gitMajor", self.major), ("gitMinor", self.minor)]
        return pairs


def semver_from_describe(describe: str, dirty: bool) -> str:
    """Turn `git describe --tags --abbrev=14` output into Kubernetes' semver."""
    dashes = describe.count("-")
    version = describe
    if dashes == 3:
        version = re.sub(r"-([0-9]+)-g([0-9a-f]{14})$", r".\1+\2", version)
    elif dashes == 2:
        version = re.sub(r"-g([0-9a-f]{14})$", r"+\1", version)
    if dirty:
        version += "-dirty"
    return version


def major_minor(version: str) -> tuple[str, str]:
    """(major, minor) as version.sh derives them; ('', '') when the pattern doesn't match."""
    m = _MAJOR_MINOR.match(version)
    if not m:
        return "", ""
    return m.group(1), m.group(2) + ("+" if m.group(4) else "")


def check_semver(version: str) -> None:
    """version.sh refuses to build with a version that isn't semver: so do we."""
    if version and not _SEMVER.match(version):
        raise KBError(f"KUBE_GIT_VERSION should be a valid Semantic Version. Current value: {version}",
                      hint="tag the commit vX.Y.Z[-pre], or set KUBE_GIT_VERSION_FILE")


def archive_values(version_sh: str) -> tuple[str, str] | None:
    """(commit, version-or-'') from a `git archive`-substituted version.sh, or None if not substituted."""
    m = re.search(r"""if\s+\[\[\s+'([^']*)'\s+==\s+"%"\s+\]\]""", version_sh)
    if not m or m.group(1) != "%":
        return None
    rest = version_sh[m.end():]
    commit_m = re.search(r"KUBE_GIT_COMMIT='([^']*)'", rest)
    commit = commit_m.group(1) if commit_m else ""
    refs_m = re.search(r"""if\s+\[\[\s+'([^']*)'\s+=~\s+tag:""", rest)
    tag_m = re.search(r"tag:\s*(v[^ ,]+)", refs_m.group(1)) if refs_m else None
    return commit, tag_m.group(1) if tag_m else ""


def parse_version_file(text: str) -> dict[str, str]:
    """Values of a KUBE_GIT_VERSION_FILE (shell assignments), without running it."""
    values: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise UsageError(f"KUBE_GIT_VERSION_FILE line {lineno}: {exc}") from None
        if words and words[0] == "export":
            words = words[1:]
        for word in words:
            key, sep, value = word.partition("=")
            if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
                raise UsageError(f"KUBE_GIT_VERSION_FILE line {lineno}: not an assignment: {line}")
            values[key] = value
    return values


def format_date(epoch: int) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _source_date_epoch(environ: Mapping[str, str]) -> int | None:
    raw = environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {raw!r}")
    return int(raw)


def _git_state(root: Path, describe_commit: str = "") -> tuple[str, bool, str | None, int] | None:
    """(commit, dirty, describe-or-None, commit time) from the tree's own git repository.

    ``describe_commit`` (a KUBE_GIT_COMMIT from the caller) is what version.sh describes instead of HEAD.
    """
    try:
        import git  # lazy: importing GitPython runs `git version`
    except ImportError as exc:  # pragma: no cover - requirements pin it
        raise KBError("GitPython is not installed", hint="pip install -r requirements.txt") from exc
    if not (root / ".git").exists():
        return None
    try:
        repo = git.Repo(root)
        commit = repo.git.rev_parse("HEAD^{commit}")
        # Kubernetes counts untracked files as dirty: use porcelain status, as it does.
        dirty = bool(repo.git.status("--porcelain"))
        try:
            describe = repo.git.describe("--tags", "--match=v*", "--abbrev=14",
                                         f"{describe_commit or commit}^{{commit}}")
        except git.GitCommandError:
            describe = None
        when = int(repo.git.log("-1", "--format=%ct", commit))
        return commit, dirty, describe, when
    except git.GitCommandError as exc:
        stderr = (exc.stderr or "").strip()
        if "dubious ownership" in stderr:
            raise TreeError(f"git refuses {root}: dubious ownership",
                            hint=f"git config --global --add safe.directory {root}") from None
        if ("does not have any commits" in stderr or "unknown revision" in stderr
                or "ambiguous argument 'HEAD" in stderr):
            return None
        raise TreeError(f"git failed in {root}: {stderr.splitlines()[-1] if stderr else exc}") from None
    except git.InvalidGitRepositoryError:
        return None


def compute(root: Path, environ: Mapping[str, str], version_sh: str | None = None) -> VersionInfo:
    """The stamp for the tree at ``root``, following hack/lib/version.sh's order of sources."""
    epoch = _source_date_epoch(environ)
    version_file = environ.get("KUBE_GIT_VERSION_FILE")
    if version_sh is None:
        version_sh = read_text(root / "hack" / "lib" / "version.sh", root=root) or ""

    if version_file:
        return _from_version_file(root, version_file, epoch)

    # Values exported by the caller win, as in version.sh's ${KUBE_GIT_*-} tests.
    commit = environ.get("KUBE_GIT_COMMIT", "")
    tree_state = environ.get("KUBE_GIT_TREE_STATE", "")
    version = environ.get("KUBE_GIT_VERSION", "")
    source = "environment" if commit else "none"
    archived = archive_values(version_sh)
    if archived:
        commit, tag = archived
        version = tag or version
        tree_state = "archive"
        source = "archive"
    state = _git_state(root, commit) if (not commit or not tree_state or not version) else None
    when: int | None = None
    if state:
        g_commit, dirty, describe, when = state
        if not commit:
            commit, source = g_commit, "git"
        if not tree_state:
            tree_state = "dirty" if dirty else "clean"
        if not version and describe:
            version = describe
    elif commit and not tree_state:
        tree_state = "dirty"  # version.sh defaults to dirty when git status can't run
    if not commit:
        # No git and no archive values: version.sh stamps only the build date.
        version = tree_state = ""
    if version:
        version = semver_from_describe(version, tree_state == "dirty")
        check_semver(version)
    major, minor = major_minor(version) if version else ("", "")
    info = VersionInfo(commit, tree_state, version, major, minor, source=source)
    if epoch is None:
        epoch = when if when is not None and source == "git" else _tree_time(root)
    return _with_date(info, epoch)


def _from_version_file(root: Path, version_file: str, epoch: int | None) -> VersionInfo:
    """The stamp a KUBE_GIT_VERSION_FILE gives (kube::version::load_version_vars), dated as the build is."""
    path = Path(version_file)
    if not path.is_file():
        raise UsageError(f"KUBE_GIT_VERSION_FILE={version_file}: no such file")
    values = parse_version_file(read_text(path) or "")
    commit, tree_state, version, major, minor = (values.get(k, "") for k in FILE_KEYS)
    info = VersionInfo(commit, tree_state, version, major, minor, source="file")
    return _with_date(info, epoch if epoch is not None else _tree_time(root))


def _tree_time(root: Path) -> int:
    """A fixed time for trees without git: `git archive` stamps every file with the commit time."""
    for rel in ("hack/lib/version.sh", "go.mod", "Makefile", "cmd"):
        p = root / rel
        if p.exists():
            return int(p.stat().st_mtime)
    return 0


def _with_date(info: VersionInfo, epoch: int) -> VersionInfo:
    data = asdict(info)
    data["build_date"] = format_date(epoch)
    return VersionInfo(**data)
