"""Getting a Kubernetes tree at a tag with git, so that `git describe` works afterwards.

Every network step has a deadline: git's own low-speed limit for http(s)
(``KBUILD_STALL_SECONDS``, default 60), ``ConnectTimeout``/``ServerAlive*``
for ssh, and a watchdog that kills git's process group when it prints no
progress for a little longer than that. git never asks for a password.
Only https, http, ssh, git and file URLs and local paths are fetched from:
``fd::``/``ext::`` and other remote helpers can hang or run commands.

A new clone is made in a hidden staging directory and renamed into place at
the end, so Ctrl-C or any failure leaves ``--dest`` as it was. An existing
clone is fetched into (a fetch only adds objects and, at its very end, the
tag) and checked out with Ctrl-C held back until the checkout is whole.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from common.config import STALL_ENV
from common.config import stall_seconds as config_stall_seconds
from common.errors import KBError, ToolError, TreeError, UsageError
from common.redact import redact

DEFAULT_URL = "https://github.com/kubernetes/kubernetes.git"
_REF = re.compile(r"^v?[0-9A-Za-z][0-9A-Za-z._+-]*\Z")  # \Z: "$" would let a trailing newline through

LOW_SPEED_BYTES = 1000  # bytes/s: below this for the stall time, git (curl) gives up
HEARTBEAT_SECONDS = 30
# The transports git may use. Anything else (fd::, ext::, other remote helpers) is refused:
# ext:: runs a command, fd:: reads a descriptor that may never answer.
_SCHEMES = {"https": "https", "http": "http", "ssh": "ssh", "git+ssh": "ssh", "ssh+git": "ssh",
            "git": "git", "file": "file"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HELPER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9+.-]*)::")


def check_ref(ref: str) -> str:
    """A tag name such as v1.20.2: no leading '-', no spaces, nothing git could read as an option."""
    if not ref or not _REF.match(ref) or ".." in ref or ref.endswith((".lock", ".")):
        raise UsageError(f"--ref {ref!r}: expected a tag such as v1.20.2")
    return ref


def url_kind(url: str) -> str:
    """The transport git would use for ``url``: https, http, ssh, git or file; anything else is refused.

    A local path may hold spaces; a URL may not (spell a space in a file:// URL as %20).
    """
    shown = redact_url(url)
    if not url or url.startswith("-") or any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise UsageError(f"--url {shown!r}: expected a repository URL or path")
    helper = _HELPER.match(url)
    scheme = _SCHEME.match(url)
    found = helper or scheme
    if found and (helper or found.group(1).lower() not in _SCHEMES):
        name = found.group(1)
        raise UsageError(f"--url {shown!r}: the {name!r} transport is not allowed",
                         hint="use an https, http, ssh, git or file:// URL, or the path of a local clone")
    if scheme:
        kind = _SCHEMES[scheme.group(1).lower()]
        if any(c.isspace() for c in url):
            raise UsageError(f"--url {shown!r}: expected a repository URL or path",
                             hint="a URL cannot hold spaces: write them as %20, or give the local path")
        return kind
    colon, slash = url.find(":"), url.find("/")
    if colon > 0 and (slash < 0 or colon < slash):  # git reads host:path as ssh (scp syntax)
        if any(c.isspace() for c in url):
            raise UsageError(f"--url {shown!r}: expected a repository URL or path",
                             hint="for a local path holding a ':', start it with ./ or /")
        return "ssh"
    return "file"


def check_url(url: str) -> str:
    url_kind(url)
    return url


def redact_url(text: str) -> str:
    """``text`` with the password of any URL in it replaced by ***."""
    return redact(text)


def stall_seconds(environ: Mapping[str, str] | None = None) -> int:
    """KBUILD_STALL_SECONDS as every transfer reads it (common.config), rounded up to the whole seconds git takes."""
    return math.ceil(config_stall_seconds(environ if environ is not None else os.environ))


def git_env(kind: str, stall: int, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for git: no prompts, the allowed transports only, deadlines on the network."""
    env = dict(environ if environ is not None else os.environ)
    env.update({
        "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "", "SSH_ASKPASS_REQUIRE": "never",
        "GIT_ALLOW_PROTOCOL": "https:http:ssh:git:file",
        "GIT_HTTP_LOW_SPEED_LIMIT": str(LOW_SPEED_BYTES), "GIT_HTTP_LOW_SPEED_TIME": str(stall),
        "LC_ALL": "C",  # git's messages are parsed below
    })
    if kind == "ssh" and "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env and not _configured_ssh(env):
        env["GIT_SSH_COMMAND"] = (f"ssh -o BatchMode=yes -o ConnectTimeout={stall}"
                                  f" -o ServerAliveInterval={max(1, stall // 3)} -o ServerAliveCountMax=3")
    return env


def _configured_ssh(env: Mapping[str, str]) -> bool:
    """The user's own core.sshCommand (kept as it is: it may not be OpenSSH)."""
    try:
        proc = subprocess.run(["git", "config", "--get", "core.sshCommand"], env=dict(env), capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return bool(proc.stdout.strip())


def _git_error(stderr: str, action: str, url: str, stall: int | None = None) -> KBError:
    """git's own cause (its first ``fatal:``/``error:`` line), with what we were doing and the URL."""
    shown = redact_url(url)
    lines = [line.strip() for line in re.split(r"[\r\n]+", stderr) if line.strip()]
    causes = [line.split(":", 1)[1].strip() for line in lines if line.startswith(("fatal:", "error:"))]
    detail = redact_url(causes[0] if causes else (lines[-1] if lines else "git failed"))
    if "dubious ownership" in stderr:
        return TreeError(f"{action}: git refuses the directory (dubious ownership)",
                         hint="git config --global --add safe.directory <dir>")
    if "Operation too slow" in stderr:
        return KBError(f"{action} from {shown}: the transfer stalled (less than {LOW_SPEED_BYTES} bytes/s"
                       f" for {stall} s)",
                       hint=f"check the network (or a proxy); {STALL_ENV} sets how long a stall may last")
    timed_out = [line for line in lines if "timed out" in line.lower()]  # ssh's own line has no "fatal:"
    if timed_out:
        return KBError(f"{action} from {shown}: {redact_url(timed_out[0])}",
                       hint=f"check the host and the network; {STALL_ENV} sets how long to wait")
    hint = None
    if "couldn't find remote ref" in detail:
        hint = f"list the tags there: git ls-remote --tags -- {shown}"
    elif "does not appear to be a git repository" in detail or "not found" in detail.lower():
        hint = "check --url: a repository URL, or the path of a local clone"
    elif "unable to access" in detail or "Could not resolve" in detail or "timed out" in detail:
        hint = "check the network (or a proxy), or use a local clone as --url"
    elif "could not read" in detail and ("Username" in detail or "Password" in detail):
        hint = "the server wants a login: use a credential helper, or a URL that needs none"
    return KBError(f"{action} from {shown}: {detail}", hint=hint)


class _Interrupts:
    """Ctrl-C held back while a step must not be cut in half (a checkout, a rename, a cleanup)."""

    def __init__(self) -> None:
        self.pending = False

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def note(_signum: int, _frame: object) -> None:
            self.pending = True

        signal.signal(signal.SIGINT, note)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def deliver(self) -> None:
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End git and everything it started (its own process group): TERM, so it removes its lock
    and temporary files, then KILL."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
    # The leader may be gone while helpers it started (git-remote-http, ssh) are not.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _git(args: list[str], *, cwd: Path, env: Mapping[str, str], stall: int | None = None,
         say: Callable[[str], None] | None = None, what: str = "") -> tuple[int, str]:
    """Run git in its own process group; returns (exit status, stderr).

    With ``stall`` a watchdog ends it when it prints nothing (git prints progress with
    ``--progress``) for a little longer than ``stall`` seconds; the step's own deadlines
    (curl's low-speed limit, ssh's timeouts) are meant to fire first with a better message.
    """
    try:
        proc = subprocess.Popen(["git", *args], cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    except FileNotFoundError as exc:
        raise ToolError("git: not found", hint="install git") from exc
    assert proc.stderr is not None
    out = bytearray()
    limit = stall + max(2, stall // 4) if stall else None
    started = last = beat = time.monotonic()
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stderr, selectors.EVENT_READ)
            while True:
                ready = sel.select(timeout=1.0)
                now = time.monotonic()
                if ready:
                    chunk = os.read(proc.stderr.fileno(), 65536)
                    if not chunk:
                        break
                    out += chunk
                    del out[:-65536]
                    last = now
                if limit is not None and now - last > limit:
                    _stop(proc)
                    raise _Stalled(now - last)
                if say and now - beat >= HEARTBEAT_SECONDS:
                    beat = now
                    say(f"still {what} ({int(now - started)} s)")
        code = proc.wait()
    finally:
        if proc.poll() is None:
            _stop(proc)
        proc.stderr.close()
    return code, out.decode("utf-8", errors="replace")


class _Stalled(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"no progress for {int(seconds)} s")
        self.seconds = seconds


def _local_git(args: list[str], cwd: Path, env: Mapping[str, str], action: str, url: str) -> str:
    """A quick local git command (no network); its stdout, or the one-line error."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", check=False)
    except FileNotFoundError as exc:
        raise ToolError("git: not found", hint="install git") from exc
    if proc.returncode != 0:
        raise _git_error(proc.stderr, action, url)
    return proc.stdout.strip()


def _step(args: list[str], cwd: Path, env: Mapping[str, str], stall: int, say: Callable[[str], None],
          action: str, url: str) -> None:
    """A network step under the deadlines; a failure or a stall is one KBError naming the URL."""
    try:
        code, stderr = _git(args, cwd=cwd, env=env, stall=stall, say=say, what=f"{action} from {redact_url(url)}")
    except _Stalled as exc:
        raise KBError(f"{action} from {redact_url(url)}: stalled (no progress for {int(exc.seconds)} s); gave up",
                      hint=f"check the server and the network; {STALL_ENV} (now {stall}) sets how long "
                           "a stall may last") from None
    if code != 0:
        raise _git_error(stderr, action, url, stall)


def _make_parents(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing parents; the ones made, deepest first (to undo)."""
    missing = []
    for path in (directory, *directory.parents):
        if path.exists():
            break
        missing.append(path)
    for path in reversed(missing):
        path.mkdir()
    return missing


@dataclass(frozen=True)
class _Fetch:
    """One `inv source`: the tag, where from, and how git runs (environment, stall limit, interrupts)."""

    ref: str
    url: str
    env: Mapping[str, str]
    stall: int
    say: Callable[[str], None]
    depth_args: list[str]
    tag_spec: str
    interrupts: _Interrupts


def _clone(job: _Fetch, dest: Path) -> None:
    """A new clone in a staging directory, moved into place only when whole.

    ``dest`` absent: the staging directory sits beside it and is renamed to it. ``dest`` an
    empty directory (perhaps a mount point or a link): staging sits inside it and its entries
    move up, so the directory itself (owner, mode, mount) stays.
    """
    ref, url, env, stall, say = job.ref, job.url, job.env, job.stall, job.say
    depth_args, tag_spec, interrupts = job.depth_args, job.tag_spec, job.interrupts
    into_existing = dest.is_dir()
    made: list[Path] = []
    staging: Path | None = None
    action = f"cloning {ref}"
    try:
        if not into_existing:
            made = _make_parents(dest.parent)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.kbuild-source-{os.getpid()}-",
                                        dir=dest if into_existing else dest.parent))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; make the clone as git would
        _local_git(["init", "-q"], staging, env, action, url)
        _step(["fetch", "--progress", "--no-write-fetch-head", *depth_args, "--no-tags", "--", url, tag_spec],
              staging, env, stall, say, action, url)
        _step(["checkout", "--progress", "--detach", f"refs/tags/{ref}"], staging, env, stall, say,
              f"checking out {ref}", url)
        _local_git(["remote", "add", "origin", url], staging, env, action, url)
        with interrupts.held():
            if into_existing:
                for entry in staging.iterdir():
                    entry.rename(dest / entry.name)
                staging.rmdir()
            else:
                staging.rename(dest)
    except BaseException:
        with interrupts.held():
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            for path in made:  # deepest first, and only while empty
                with contextlib.suppress(OSError):
                    path.rmdir()
        raise
    interrupts.deliver()


def _update(job: _Fetch, dest: Path) -> None:
    """Fetch the tag into an existing clone, then check it out whole (or not at all)."""
    ref, url, env, stall, say = job.ref, job.url, job.env, job.stall, job.say
    depth_args, tag_spec, interrupts = job.depth_args, job.tag_spec, job.interrupts
    action = f"fetching {ref}"
    if _local_git(["status", "--porcelain"], dest, env, action, url):
        raise TreeError(f"{dest} has local changes; refusing to check out {ref} over them",
                        hint="commit or stash them first")
    old_head = _local_git(["rev-parse", "--verify", "HEAD^{commit}"], dest, env, action, url)
    branch = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=dest, env=dict(env), capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, check=False).stdout.strip()
    say(f"fetching {ref} from {redact_url(url)} into {dest}")
    # A fetch cut short leaves the checkout, HEAD and every ref as they were: git writes the
    # tag only at its very end, and _git ends git with SIGTERM so it removes its own lock files.
    # --no-write-fetch-head: git empties FETCH_HEAD first thing, even for a fetch that then fails.
    _step(["fetch", "--progress", "--no-write-fetch-head", *depth_args, "--no-tags", "--", url, tag_spec],
          dest, env, stall, say, action, url)
    with interrupts.held():  # a checkout cut in half would mix two trees
        code, stderr = _git(["checkout", "-q", "--detach", f"refs/tags/{ref}"], cwd=dest, env=env)
        if code != 0:
            raise _git_error(stderr, f"checking out {ref}", url)
        if interrupts.pending:  # Ctrl-C during the checkout: put the old one back, then stop
            back = ["checkout", "-q", branch.removeprefix("refs/heads/")] if branch.startswith("refs/heads/") \
                else ["checkout", "-q", "--detach", old_head]
            _git(back, cwd=dest, env=env)
    interrupts.deliver()


def fetch_source(ref: str, url: str, dest: Path, say: Callable[[str], None], depth: int | None = 1) -> str:
    """Clone ``url`` at tag ``ref`` into ``dest``, or fetch and check it out where a clone exists.

    Returns the commit checked out. The tag itself is always fetched so
    `git describe --tags` names it, even in a shallow clone.
    """
    check_ref(ref)
    kind = url_kind(url)
    stall = stall_seconds()
    env = git_env(kind, stall)
    tag_spec = f"+refs/tags/{ref}:refs/tags/{ref}"
    depth_args = [f"--depth={depth}"] if depth else []
    job = _Fetch(ref, url, env, stall, say, depth_args, tag_spec, _Interrupts())
    if dest.exists() and not dest.is_dir():
        raise TreeError(f"{dest} exists and is not a directory", hint="choose another --dest")
    if dest.is_dir() and any(dest.iterdir()):
        if not (dest / ".git").exists():
            raise TreeError(f"{dest} exists and is not a git repository", hint="choose another --dest")
        _update(job, dest)
    else:
        say(f"cloning {redact_url(url)} at {ref} into {dest}")
        _clone(job, dest)
    return _local_git(["rev-parse", "HEAD^{commit}"], dest, env, f"reading {dest}", url)


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
