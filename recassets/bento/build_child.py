"""The ``bentoml build`` child of ``bundle.build_bento``: the lock its builds share, the sweep of
the folders failed builds left, and the line a failure is reported by.

**Leftovers.** BentoML assembles a bento in ``<BENTOML_HOME>/tmp/bentoml_bento_<name><random>``
(``tempfile.mkdtemp`` in ``Bento.create``) and moves it into the store when the build succeeds;
a build that fails (a full disk, a permission) or is killed leaves the folder, with the whole
bundle in it (checkpoints and index for a model bento), and each daemon retry added another
(fault review, 2026-12-07). No build of BentoML's removes them.

**Which may go.** Every build takes a shared ``flock`` on ``<BENTOML_HOME>/.recassets-build.lock``
and hands the descriptor to its child (``pass_fds``), so the lock is held while the child
lives, even when the step that started it was killed and the child runs on. Before its child
starts, a build tries the lock exclusively, without waiting: when it gets it no build of this
store is running, so every ``bentoml_bento_*`` folder is a dead build's and all are removed;
when another build holds it, none is (a live build's folder cannot be told from a dead one's,
and an age would guess: a large bundle copies for minutes); the next build that runs alone
sweeps them. ``flock`` is released by the kernel when the last holder of the descriptor exits,
so a killed build never leaves the store locked. A ``bentoml build`` run by hand into the same
store takes no lock: do not run one while recassets builds.

**A store that cannot lock** (NFS without lockd: ``ENOLCK``; some FUSE and SMB mounts:
``EOPNOTSUPP``; Windows, without ``fcntl``): the build runs without the lock and sweeps nothing,
since no build there can tell whether another is running; the log says so once per store. Such
a store's leftovers are removed by hand (``<BENTOML_HOME>/tmp/bentoml_bento_*``, no build
running). Every build there had failed on the lock instead.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import shutil
from collections.abc import Generator
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

BUILD_LOCK = ".recassets-build.lock"
TMP_PREFIX = "bentoml_bento_"  # BentoML's (bentoml/_internal/bento/bento.py, Bento.create)
TAIL_CHARS = 4000  # of the child's stderr, kept in the error after its cause

# A Python exception's last line (``OSError: [Errno 28] ...``, ``bentoml.exceptions.
# BentoMLException: ...``, ``KeyboardInterrupt``) or click's ``Error: ...`` (BentoML's CLI
# prints a BentoMLException so, with no traceback).
_CAUSE = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception|Exit|Interrupt)\b.*")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # click colours its "Error:" red


@contextlib.contextmanager
def build_lock(bentoml_home: Path) -> Generator[int, None, None]:
    """Hold the store's build lock (shared) for one build; yields its descriptor, for the child
    to inherit. Leftovers of dead builds are swept first when no other build holds it. Where
    the store cannot lock, the build goes on unlocked and nothing is swept (module docstring)."""
    bentoml_home.mkdir(parents=True, exist_ok=True)
    with open(bentoml_home / BUILD_LOCK, "a") as handle:
        alone = _lock_alone(handle, bentoml_home)
        if alone is None:  # the child inherits a descriptor that holds no lock
            yield handle.fileno()
            return
        if alone:
            sweep_leftovers(bentoml_home / "tmp")
        # From exclusive to shared: not atomic (flock(2)), but this build's child has not
        # started, so a build that sweeps in between removes nothing of this one's.
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_SH)
        yield handle.fileno()


def _lock_alone(handle: IO[str], bentoml_home: Path) -> bool | None:
    """The build lock tried exclusively, without waiting: True when this build has it (no
    other runs), False when another build holds it, None when the store cannot lock."""
    try:
        import fcntl  # here: bundle, server and the CLI import this module; Windows has none

        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError as e:
        _say_unlocked(bentoml_home, e)
        return None
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False  # another build is running: its folder is among them
        _say_unlocked(bentoml_home, e)  # ENOLCK, EOPNOTSUPP: no lock to be had here
        return None
    return True


_said_unlocked: set[str] = set()


def _say_unlocked(bentoml_home: Path, error: BaseException) -> None:
    """Once per store and process: its builds run unlocked and leave their leftovers."""
    if str(bentoml_home) in _said_unlocked:
        return
    _said_unlocked.add(str(bentoml_home))
    log.warning(
        "bento build: the store %s cannot be locked (%s): builds run without the build lock "
        "and sweep nothing; remove its tmp/%s* folders by hand while no build runs",
        bentoml_home, error, TMP_PREFIX,
    )  # fmt: skip


def sweep_leftovers(tmp: Path) -> list[str]:
    """Remove the ``bentoml_bento_*`` folders under BentoML's ``tmp``; returns their names.
    Called only with the build lock held exclusively (``build_lock``)."""
    gone = []
    for stale in sorted(tmp.glob(f"{TMP_PREFIX}*")) if tmp.is_dir() else ():
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
            gone.append(stale.name)
    return gone


def failure(returncode: int, stderr: str) -> str:
    """The error of a failed build: its cause first (what a run's one-line summary shows),
    then the tail of the child's stderr, where the traceback is."""
    return (
        f"bentoml build failed ({returncode}): {cause(returncode, stderr)}\n"
        f"the last {TAIL_CHARS} characters of its stderr:\n{stderr[-TAIL_CHARS:]}"
    )


def cause(returncode: int, stderr: str) -> str:
    """The child's last exception line, else its last line; a signal's name when it was
    killed and said nothing."""
    lines = [_ANSI.sub("", line).rstrip() for line in stderr.splitlines()]
    found = [line for line in lines if _CAUSE.match(line)]
    if found:
        return found[-1]
    said = [line.strip() for line in lines if line.strip()]
    if said:
        return said[-1]
    if returncode < 0:
        import signal

        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}, nothing on stderr"
    return "nothing on stderr"
