"""Long fits say how far they are (``recassets.training.progress``): the item similarity fitted
for 9 minutes and the ranker trained for over 13 with nothing in the CLI or the run log, so a
slow run could not be told from a hung one (review, 2026-12-07). The clock is the test's: a
line within a pass is due after 30 of its seconds, whatever the machine's speed."""

from __future__ import annotations

import re
from dataclasses import replace

from recassets.paths import Paths
from recassets.training import progress as P
from recassets.training import similarity as S
from recassets.training.loop import train_two_tower
from support import planted

from .test_similarity import pair_world
from .tiny import DAYS, TINY
from .torch_threads import one_torch_thread  # noqa: F401


class Clock:
    """Seconds that move only by ``step`` at each reading."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_training_says_when_it_starts_and_each_pass_ends(table, monkeypatch, tmp_path):
    """A quick run (no 30 s within a pass): its start and one line a pass, nothing more."""
    monkeypatch.setattr(P, "_clock", Clock(0.0))
    lines: list[str] = []
    ckpt = train_two_tower(table, DAYS[:3], replace(TINY, epochs=2), output=tmp_path / "tt.pt",
                           progress=lines.append)  # fmt: skip
    each = ckpt.metrics["examples"] // 2
    assert lines == [
        f"two_tower: from scratch, 2 pass(es) over 3 day(s) {DAYS[0]}..{DAYS[2]} (0 s in)",
        f"two_tower: pass 1 of 2 done: {each:,} examples of 3 day(s), "
        f"{ckpt.metrics['steps'] // 2} steps in all (0 s in)",
        f"two_tower: pass 2 of 2 done: {each:,} examples of 3 day(s), "
        f"{ckpt.metrics['steps']} steps in all (0 s in)",
    ]


def test_a_long_pass_says_it_is_alive_at_most_every_30_seconds(table, monkeypatch, tmp_path):
    """Each reading of the clock 7 s later: a line within a pass comes when 30 s passed since
    the last line, never sooner, naming the pass, the day and the examples so far."""
    monkeypatch.setattr(P, "_clock", Clock(7.0))
    lines: list[str] = []
    with P.reporting(lines.append):  # as the asset passes it: through policy.train_next
        train_two_tower(table, DAYS[:3], replace(TINY, epochs=2), output=tmp_path / "tt.pt")
    within = [ln for ln in lines if re.match(r"two_tower: pass \d of 2, day ", ln)]
    assert within and len(lines) == len(within) + 3  # the start and the two passes' ends
    at = [60 * int(m.group(1) or 0) + int(m.group(2)) for ln in lines
          if (m := re.search(r"\((?:(\d+) min )?(\d+) s in\)$", ln))]  # fmt: skip
    assert len(at) == len(lines) and at == sorted(at)
    # a line within a pass comes at least 30 s after the line before it, whatever that was
    gaps = [at[i] - at[i - 1] for i, ln in enumerate(lines) if ln in within]
    assert min(gaps) >= 30, list(zip(lines, at, strict=True))
    assert re.fullmatch(r"two_tower: pass 1 of 2, day 2026-01-0\d \([1-3] of 3\), [\d,]+ examples "
                        r"\(.+ s in\)", within[0])  # fmt: skip


def test_the_item_similarity_says_each_fit_before_its_inversion(tmp_path, monkeypatch):
    """The asset's fit: what it read, the fit, and each inversion, one line each."""
    monkeypatch.setattr(P, "_clock", Clock(0.0))
    paths = Paths.at(tmp_path)
    planted.write_days(paths.table("training_examples"), range(4))
    lines: list[str] = []
    sim, _, _ = S.train_next(paths, holdout_days=1, l2=5.0, progress=lines.append)
    m, pairs, positives = sim.meta["items"], sim.meta["pairs"], sim.meta["positives"]
    assert lines == [
        f"item_similarity: {48 * 16 * 3:,} examples of 3 day(s) {DAYS[0]}..{DAYS[2]} read (0 s in)",
        f"item_similarity: the fit: λ 5, β {S.BETA:g}, on {positives:,} positives (0 s in)",
        f"item_similarity: inverting the {m:,} x {m:,} Gram matrix of {pairs:,} pairs, λ 5 "
        "(0 s in)",
    ]


def test_choosing_the_weights_says_each_fit_of_its_grid():
    lines: list[str] = []
    said = P.Progress(lines.append, "item_similarity", every_s=float("inf"))
    S.choose_weights(pair_world(), grid=(0.5, 10.0), betas=(0.1,), progress=said)
    assert [ln.split(" (")[0] for ln in lines[::2]] == [
        "item_similarity: choosing λ and β: fit 1 of 2 on 20 day(s), scored on 120 users of the "
        "last 7",
        "item_similarity: choosing λ and β: fit 2 of 2 on 20 day(s), scored on 120 users of the "
        "last 7",
    ]
    assert all(ln.startswith("item_similarity: inverting the ") for ln in lines[1::2])


def test_a_progress_with_nowhere_to_say_is_never_due(monkeypatch):
    monkeypatch.setattr(P, "_clock", Clock(100.0))
    assert not P.Progress(None, "x").due()
    lines: list[str] = []
    with P.reporting(lines.append):
        said = P.Progress(None, "x")
    assert said.due()
    said.say("done")
    assert lines == ["x: done (3 min 20 s in)"]  # read at 400, started at 200
