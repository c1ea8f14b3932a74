"""Killing a driver at a random moment, as oned's timeout does, and what must hold after.

A trial starts an action in a process group of its own (the driver and the commands it runs: qemu-img,
mkfs), waits a random time drawn from the action's own duration (measured once, unkilled), and
signals the group: TERM, which oned's timeout sends first (then KILL 5 s later, as here), or KILL
straight away. The scenario then checks the volume: the action finished and its result is right, or
it did not and nothing oned was told of changed; the staging files a KILL left are hidden, and the
staging rule sweeps them once stale, never sooner; and the action, run again as oned retries it,
succeeds.

The number of trials per action and signal comes from ONE_GLUSTER_TRIALS (default 1: the CI sample),
the random moments from ONE_GLUSTER_SEED (default 20261206), so that a failing trial can be replayed.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

TRIALS = int(os.environ.get("ONE_GLUSTER_TRIALS", "1"))
SEED = int(os.environ.get("ONE_GLUSTER_SEED", "20261206"))
TERM_GRACE = 5.0                   # seconds between TERM and KILL
STAGED = re.compile(r"\..+\.[0-9a-f]{8}\.[a-z0-9]+")      # the staging files' names (core.staging)


@dataclass
class Launch:
    """One run of a driver executable as oned runs it."""

    argv: list[str]
    stdin: bytes = b""
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """How a trial ended: `finished` (exit 0 before the signal), `failed` (another exit before it) or
    `killed`; what it printed."""

    how: str
    returncode: int
    stdout: str
    stderr: str
    delay: float


def run(launch: Launch, delay: Optional[float] = None, signum: int = signal.SIGKILL) -> Outcome:
    """Run `launch` in its own process group; after `delay` seconds (None: never), signal the group."""
    proc = subprocess.Popen(launch.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **launch.env}, start_new_session=True)
    proc.stdin.write(launch.stdin)
    proc.stdin.close()
    proc.stdin = None                  # given all it gets: communicate() must not flush it
    signalled = False
    if delay is not None:
        try:
            proc.wait(delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signum)
            signalled = True
            if signum == signal.SIGTERM:
                try:
                    proc.wait(TERM_GRACE)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
    stdout, stderr = proc.communicate()
    _reap_group(proc.pid)
    how = "finished" if proc.returncode == 0 else ("killed" if signalled else "failed")
    return Outcome(how, proc.returncode, stdout.decode(), stderr.decode(), delay or 0.0)


def _reap_group(pgid: int, timeout: float = 10.0) -> None:
    """Wait until no process of group `pgid` is left (a killed driver's qemu-img dies with it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(pgid, signal.SIGKILL)


def staged(directory: Path) -> set[str]:
    """The staging files in `directory`."""
    return {p.name for p in directory.iterdir() if STAGED.fullmatch(p.name)} if directory.is_dir() else set()


def visible(directory: Path) -> set[str]:
    """What `directory` holds besides staging files."""
    return {p.name for p in directory.iterdir() if not STAGED.fullmatch(p.name)} if directory.is_dir() else set()


@dataclass
class Case:
    """One action set up to be killed: how to run it, and what must hold after.

    `finished(outcome)` checks a completed result; `as_before(outcome)` that nothing oned was told of
    changed, and returns the orphans: new images made whole by a process killed before it answered,
    which oned never learns of (it takes no answer from a killed action); `workdirs` are where its
    staging files go; `undo()` removes what a trial made, so that the next starts from the same state."""

    launch: Launch
    finished: Callable[[Outcome], None]
    as_before: Callable[[Outcome], int]
    workdirs: list[Path]
    undo: Callable[[], None] = lambda: None


@dataclass
class Tally:
    """Trials of one action and signal, by outcome."""

    action: str
    signal: str
    outcomes: dict[str, int] = field(default_factory=lambda: {"finished": 0, "failed": 0, "killed": 0})
    left_staged: int = 0            # staging files left by the killed process (KILL leaves them)
    orphans: int = 0                # whole new images renamed into place by a process killed before it answered

    def line(self) -> str:
        o = self.outcomes
        return (f"{self.action} {self.signal}: {sum(o.values())} trials, killed {o['killed']}, finished first "
                f"{o['finished']}, failed {o['failed']}; staging files left {self.left_staged}, whole images orphaned "
                f"{self.orphans}")


def delays(rng: random.Random, duration: float, count: int) -> list[float]:
    """`count` moments spread over the action's duration (and a little past it), in random order."""
    return [rng.uniform(0.0, duration * 1.1) for _ in range(count)]
