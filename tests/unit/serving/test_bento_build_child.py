"""The ``bentoml build`` child (``recassets.bento.build_child``): a failure is reported by its
cause, not by the head of BentoML's traceback; the folders failed builds leave in BentoML's
tmp are swept by the next build that runs alone, never while another build runs. Fault
review, 2026-12-07: "bentoml build failed (1): Traceback (most recent call last):; File
"<frozen runpy>" ..." with the ``No space left on device`` 50 lines further, and one
``bentoml_bento_*`` folder (the whole bundle) per failed try."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recassets.bento import build_child as C
from recassets.bento import bundle as B

NO_SPACE = (
    "OSError: [Errno 28] No space left on device: '/tmp/bento-ctx-4lv3yhqd/recassets/funnel/"
    "bundle.py' -> '/data/bentoml/tmp/bentoml_bento_recassets_recommendercel_k9t8/src/x.py'"
)
# BentoML's stderr as the fault review saw it: a 40-line traceback ending with its cause
STDERR = "\n".join([
    "Traceback (most recent call last):",
    '  File "<frozen runpy>", line 198, in _run_module_as_main',
    '  File ".venv/lib/python3.11/site-packages/bentoml/__main__.py", line 4, in <module>',
    "    cli()",
    *[f'  File "click/core.py", line {n}, in invoke\n    return callback()' for n in range(20)],
    '  File "shutil.py", line 144, in _fastcopy_sendfile',
    "    sent = os.sendfile(outfd, infd, offset, blocksize)",
    "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    NO_SPACE,
    "",
])  # fmt: skip


def _leftover(paths, name: str) -> Path:
    folder = Path(B.bentoml_home(paths)) / "tmp" / f"{C.TMP_PREFIX}recassets_recommender{name}"
    (folder / "src" / "bundle" / "models").mkdir(parents=True)
    (folder / "src" / "bundle" / "models" / "two_tower.pt").write_bytes(b"a checkpoint")
    return folder


def _held(lock: Path) -> bool:
    """Whether some build holds the lock (an exclusive try fails)."""
    if not lock.exists():
        return False
    with open(lock) as probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(probe, fcntl.LOCK_UN)
        return False


def _failing_build(seen: dict):
    """``subprocess.run`` standing in for ``bentoml build``: records what the child would find
    and fails as the full disk did."""

    def run(cmd, **kwargs):
        home = Path(kwargs["env"]["BENTOML_HOME"])
        seen["leftovers"] = sorted(p.name for p in (home / "tmp").glob(f"{C.TMP_PREFIX}*"))
        fds = kwargs.get("pass_fds", ())
        seen["inherited"] = [os.readlink(f"/proc/self/fd/{fd}") for fd in fds]
        seen["locked"] = _held(home / C.BUILD_LOCK)
        return subprocess.CompletedProcess(cmd, 1, "", STDERR)

    return run


def test_a_failed_build_is_reported_by_its_cause_then_its_output(paths, monkeypatch):
    seen: dict = {}
    monkeypatch.setattr(B.subprocess, "run", _failing_build(seen))
    with pytest.raises(RuntimeError) as err:
        B.build_bento(paths, B.write_bundle(paths), variant="pypi")
    first, *rest = str(err.value).splitlines()
    assert first == f"bentoml build failed (1): {NO_SPACE}"
    assert rest[0] == f"the last {C.TAIL_CHARS} characters of its stderr:"
    assert "\n".join(rest[1:]) == STDERR[-C.TAIL_CHARS :].rstrip("\n")


def test_a_failed_builds_leftover_is_swept_by_the_next_build_under_its_lock(paths, monkeypatch):
    left = _leftover(paths, "cel_k9t8")
    seen: dict = {}
    monkeypatch.setattr(B.subprocess, "run", _failing_build(seen))
    with pytest.raises(RuntimeError):
        B.build_bento(paths, B.write_bundle(paths), variant="pypi")
    assert not left.exists() and seen["leftovers"] == []  # gone before the child started
    assert seen["locked"] and not _held(Path(B.bentoml_home(paths)) / C.BUILD_LOCK)
    # the child inherits the lock, so a build whose step was killed holds it while it runs
    assert seen["inherited"] == [str(Path(B.bentoml_home(paths)) / C.BUILD_LOCK)]


def test_no_leftover_is_swept_while_another_build_runs(paths, monkeypatch):
    left = _leftover(paths, "live1234")
    lock = Path(B.bentoml_home(paths)) / C.BUILD_LOCK
    seen: dict = {}
    monkeypatch.setattr(B.subprocess, "run", _failing_build(seen))
    with open(lock, "a") as other:  # a build running beside: its folder may be this one
        fcntl.flock(other, fcntl.LOCK_SH)
        with pytest.raises(RuntimeError):
            B.build_bento(paths, B.write_bundle(paths), variant="pypi")
    assert left.exists() and seen["leftovers"] == [left.name]
    with pytest.raises(RuntimeError):  # the next build that runs alone sweeps it
        B.build_bento(paths, B.write_bundle(paths), variant="pypi")
    assert not left.exists()


@pytest.mark.parametrize(
    ("returncode", "stderr", "said"),
    [
        # BentoML's CLI prints its own exceptions through click, red, with no traceback
        (1, "loading...\n\x1b[31mError: [bentoml-cli] `build` failed: no service\x1b[0m\n",
         "Error: [bentoml-cli] `build` failed: no service"),
        # a chained exception: the last one raised is the cause reported
        (1, "ValueError: first\n\nDuring handling of the above exception, another exception "
            "occurred:\n\nTraceback (most recent call last):\n  File \"x\"\n"
            "PermissionError: [Errno 1] Operation not permitted: '/b/bentos/r/t'\n",
         "PermissionError: [Errno 1] Operation not permitted: '/b/bentos/r/t'"),
        (1, "warming up\nsomething went wrong here\n", "something went wrong here"),
        (-9, "", "killed by SIGKILL, nothing on stderr"),
    ],
)  # fmt: skip
def test_the_cause_is_the_last_exception_line(returncode, stderr, said):
    assert C.cause(returncode, stderr) == said


def test_a_store_that_cannot_lock_builds_unlocked_sweeps_nothing_and_says_so_once(
    paths, monkeypatch, caplog
):
    """NFS without lockd refuses ``flock`` with ENOLCK (some FUSE and SMB mounts with
    EOPNOTSUPP): every bento build failed on the lock. Now it builds without it; a leftover
    is kept, since no build there can tell a live build's folder from a dead one's."""
    import errno

    left = _leftover(paths, "nfs12345")

    def no_lock(*_args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_lock)
    seen: list[list[str]] = []

    def run(cmd, **kwargs):  # the child reached: it fails as a build may, for its own reason
        home = Path(kwargs["env"]["BENTOML_HOME"])
        seen.append(sorted(p.name for p in (home / "tmp").glob(f"{C.TMP_PREFIX}*")))
        return subprocess.CompletedProcess(cmd, 1, "", NO_SPACE)

    monkeypatch.setattr(B.subprocess, "run", run)
    caplog.set_level("WARNING", logger=C.__name__)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="bentoml build failed"):
            B.build_bento(paths, B.write_bundle(paths), variant="pypi")
    assert seen == [[left.name], [left.name]] and left.exists()
    said = [r.getMessage() for r in caplog.records if r.name == C.__name__]
    assert (
        len(said) == 1
        and f"cannot be locked ({OSError(errno.ENOLCK, 'No locks available')})" in said[0]
    )


def test_bundle_server_and_the_serve_and_status_commands_import_without_fcntl():
    """Windows has no ``fcntl``: imported at the top of build_child, which bundle imports,
    it kept the server, ``recassets serve`` and ``status`` from importing at all."""
    code = ("import sys; sys.modules['fcntl'] = None\n"  # import fcntl raises ImportError
            "import recassets.bento.build_child, recassets.bento.bundle, recassets.bento.server\n"
            "import recassets.cli_serve, recassets.cli_status\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[3])  # fmt: skip
    assert done.returncode == 0, done.stderr
