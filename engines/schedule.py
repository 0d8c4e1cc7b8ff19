"""Which platform goes to which engine: pure decisions, no engine, no clock.

- Each platform has a weight: the number of release targets built for it, plus ``CGO_EXTRA`` for the
  platforms whose kubelet is built with cgo (linux/amd64 and linux/arm64: a C compiler and a slower
  link). Weights only order the work; they are not times.
- An engine works on one platform at a time; a free engine takes the heaviest platform still waiting
  that it may take (longest first, ties by name, so the plan is the same every run).
- A platform that fails on an engine goes back to the queue, never for that engine again; after
  ``MAX_ATTEMPTS`` attempts, or when no engine is left that may take it, the release fails with one
  line naming the platform and the engine it last failed on.
- An engine that went away (its daemon stopped answering) takes nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from common.errors import KBError

MAX_ATTEMPTS = 2          # the first try and one retry on another engine
CGO_EXTRA = 2             # what a cgo kubelet adds to a platform's weight
CGO_PLATFORMS = ("linux/amd64", "linux/arm64")


class ScheduleError(KBError):
    """A platform failed on every engine it was allowed to try."""

    code = 1


def weights(targets: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """{platform: weight} from {platform: its targets} (see the module's docstring)."""
    out = {}
    for platform, ts in targets.items():
        cgo = platform in CGO_PLATFORMS and any(t.rstrip("/").endswith("kubelet") for t in ts)
        out[platform] = max(len(ts), 1) + (CGO_EXTRA if cgo else 0)
    return out


@dataclass
class Attempt:
    """One platform's try on one engine (``number`` counts from 1)."""

    platform: str
    engine: str
    number: int


@dataclass
class _Job:
    platform: str
    weight: int
    tried: list[str] = field(default_factory=list)
    last_error: str = ""


class Schedule:
    """The queue and its rules. Not thread-safe: the caller holds one lock around every call."""

    def __init__(self, platform_weights: Mapping[str, int], engines: Sequence[str]) -> None:
        if not engines:
            raise ValueError("no engines")
        if len(set(engines)) != len(engines):
            raise ValueError("an engine is named twice")
        self.engines = list(engines)
        self.pending: list[_Job] = [_Job(p, w) for p, w in platform_weights.items()]
        self.running: dict[str, _Job] = {}        # engine -> its job
        self.done: dict[str, str] = {}            # platform -> engine it succeeded on
        self.attempts: dict[str, int] = {}        # platform -> attempts made
        self.gone: set[str] = set()
        self.failure: ScheduleError | None = None

    # --- what the engines ask -------------------------------------------------------------------

    def order(self) -> list[str]:
        """The waiting platforms, heaviest first (ties by name)."""
        return [j.platform for j in sorted(self.pending, key=lambda j: (-j.weight, j.platform))]

    def take(self, engine: str) -> Attempt | None:
        """The next platform for ``engine`` (free, not gone), or None when nothing is for it now."""
        if self.failure is not None or engine in self.gone or engine in self.running:
            return None
        for job in sorted(self.pending, key=lambda j: (-j.weight, j.platform)):
            if engine not in job.tried:
                self.pending.remove(job)
                job.tried.append(engine)
                self.running[engine] = job
                self.attempts[job.platform] = len(job.tried)
                return Attempt(job.platform, engine, len(job.tried))
        return None

    def succeeded(self, attempt: Attempt) -> None:
        job = self.running.pop(attempt.engine)
        self.done[job.platform] = attempt.engine

    def failed(self, attempt: Attempt, why: str, *, gone: bool = False) -> None:
        """The attempt failed (``gone``: its engine is lost for this run); the platform is queued again
        for another engine, or the release fails."""
        job = self.running.pop(attempt.engine)
        job.last_error = why
        if gone:
            self.gone.add(attempt.engine)
        if len(job.tried) >= MAX_ATTEMPTS:
            self._fail(job, f"failed on {len(job.tried)} engines")
            return
        self.pending.append(job)
        self._check_stranded()

    def engine_lost(self, engine: str, why: str) -> None:
        """An engine that went away while it had no platform (e.g. it could not be reached at the start)."""
        self.gone.add(engine)
        self._check_stranded(why)

    # --- the state --------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Every platform built, or the release failed (the running ones may still be finishing)."""
        return self.failure is not None or (not self.pending and not self.running)

    def waiting_for(self, engine: str) -> bool:
        """Could ``engine`` still get a platform later (a retry of one running elsewhere)?"""
        if self.failure is not None or engine in self.gone:
            return False
        return any(engine not in j.tried and len(j.tried) < MAX_ATTEMPTS for j in self.running.values())

    def _check_stranded(self, why: str = "") -> None:
        """A waiting platform no live engine may take fails the release now."""
        live = [e for e in self.engines if e not in self.gone]
        for job in sorted(self.pending, key=lambda j: (-j.weight, j.platform)):
            if not any(e not in job.tried for e in live):
                if job.tried:
                    self._fail(job, "and no other engine is left")
                else:
                    self._fail(job, "no engine is left to build it", why)
                return

    def _fail(self, job: _Job, how: str, why: str = "") -> None:
        if self.failure is not None:
            return
        from common.redact import redact

        if job.tried:
            last = job.tried[-1]
            self.failure = ScheduleError(redact(f"{job.platform} failed on the engine at {last} ({how}): "
                                                f"{job.last_error}"),
                                         hint="check that engine (`inv doctor --task release --engine URL`), "
                                              "or leave it out")
        else:
            lost = ", ".join(self.engines)
            self.failure = ScheduleError(redact(f"{job.platform}: {how} (lost: {lost}): {why}"),
                                         hint="check the engines (`inv doctor --task release --engine URL`)")


def simulate(platform_weights: Mapping[str, int], engines: Sequence[str]) -> dict[str, list[str]]:
    """The plan when nothing fails and a platform takes its weight in time: {engine: [its platforms, in order]}."""
    sched = Schedule(platform_weights, engines)
    plan: dict[str, list[str]] = {e: [] for e in engines}
    ends: dict[str, tuple[int, Attempt]] = {}  # engine -> (when it finishes, what)
    now = 0
    while not sched.finished:
        for engine in engines:
            attempt = sched.take(engine)
            if attempt is not None:
                plan[engine].append(attempt.platform)
                ends[engine] = (now + platform_weights[attempt.platform], attempt)
        engine = min(ends, key=lambda e: (ends[e][0], engines.index(e)))
        now, attempt = ends.pop(engine)
        sched.succeeded(attempt)
    return plan
