"""Getting a Kubernetes tree at a tag with GitPython, so that `git describe` works afterwards."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from common.errors import KBError, TreeError, UsageError

DEFAULT_URL = "https://github.com/kubernetes/kubernetes.git"
_REF = re.compile(r"^v?[0-9A-Za-z][0-9A-Za-z._+-]*\Z")  # \Z: "$" would let a trailing newline through


def check_ref(ref: str) -> str:
    """A tag name such as v1.20.2: no leading '-', no spaces, nothing git could read as an option."""
    if not ref or not _REF.match(ref) or ".." in ref or ref.endswith((".lock", ".")):
        raise UsageError(f"--ref {ref!r}: expected a tag such as v1.20.2")
    return ref


def check_url(url: str) -> str:
    if not url or url.startswith("-") or any(c.isspace() for c in url):
        raise UsageError(f"--url {url!r}: expected a repository URL or path")
    return url


def _git_error(exc: Exception, action: str, url: str) -> KBError:
    """git's own cause (its first ``fatal:``/``error:`` line), with what we were doing and the URL."""
    stderr = (getattr(exc, "stderr", "") or "").strip().removeprefix("stderr:").strip().strip("'")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    causes = [line.split(":", 1)[1].strip() for line in lines if line.startswith(("fatal:", "error:"))]
    detail = causes[0] if causes else (lines[-1] if lines else str(exc))
    if "dubious ownership" in stderr:
        return TreeError(f"{action}: git refuses the directory (dubious ownership)",
                         hint="git config --global --add safe.directory <dir>")
    hint = None
    if "couldn't find remote ref" in detail:
        hint = f"list the tags there: git ls-remote --tags -- {url}"
    elif "does not appear to be a git repository" in detail or "not found" in detail.lower():
        hint = "check --url: a repository URL, or the path of a local clone"
    elif "unable to access" in detail or "Could not resolve" in detail:
        hint = "check the network (or a proxy), or use a local clone as --url"
    return KBError(f"{action} from {url}: {detail}", hint=hint)


def fetch_source(ref: str, url: str, dest: Path, say: Callable[[str], None], depth: int | None = 1) -> str:
    """Clone ``url`` at tag ``ref`` into ``dest``, or fetch and check it out where a clone exists.

    Returns the commit checked out. The tag itself is always fetched so
    `git describe --tags` names it, even in a shallow clone.
    """
    import git  # lazy: GitPython runs `git version` on import

    check_ref(ref)
    check_url(url)
    tag_spec = f"+refs/tags/{ref}:refs/tags/{ref}"
    depth_args = [f"--depth={depth}"] if depth else []
    if dest.exists() and any(dest.iterdir()):
        if not (dest / ".git").exists():
            raise TreeError(f"{dest} exists and is not a git repository", hint="choose another --dest")
        repo = git.Repo(dest)
        if repo.git.status("--porcelain"):
            raise TreeError(f"{dest} has local changes; refusing to check out {ref} over them",
                            hint="commit or stash them first")
        say(f"fetching {ref} from {url} into {dest}")
        try:
            repo.git.fetch(*depth_args, "--no-tags", "--", url, tag_spec)
            repo.git.checkout("--detach", f"refs/tags/{ref}")
        except git.GitCommandError as exc:
            raise _git_error(exc, f"fetching {ref}", url) from None
    else:
        say(f"cloning {url} at {ref} into {dest}")
        created = not dest.exists()
        dest.mkdir(parents=True, exist_ok=True)
        try:
            repo = git.Repo.init(dest)
            repo.git.fetch(*depth_args, "--no-tags", "--", url, tag_spec)
            repo.git.checkout("--detach", f"refs/tags/{ref}")
            repo.git.remote("add", "origin", url)
        except git.GitCommandError as exc:
            # Leave nothing behind: the directory is ours only if we just made it.
            if created:
                shutil.rmtree(dest, ignore_errors=True)
            else:
                shutil.rmtree(dest / ".git", ignore_errors=True)
            raise _git_error(exc, f"cloning {ref}", url) from None
    commit: str = repo.git.rev_parse("HEAD^{commit}")
    return commit


def init_repo(path: Path, tag: str | None, message: str = "sample tree") -> str:
    """Make ``path`` a git repository with one commit (and an annotated tag). Returns the commit."""
    import git

    repo = git.Repo.init(path)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "kbuild")
        cw.set_value("user", "email", "kbuild@localhost")
        cw.set_value("commit", "gpgsign", "false")
    repo.git.add("-A")
    repo.git.commit("-q", "-m", message)
    if tag:
        repo.git.tag("-a", tag, "-m", tag)
    commit: str = repo.git.rev_parse("HEAD")
    return commit
