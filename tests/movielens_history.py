"""A small MovieLens history in the ml-100k layout (u.data, u.item, u.user) with days on which
nobody rated anything, as real histories have (a small product, an outage, a holiday).

Deterministic: the same arguments write the same bytes. Users prefer one of a few genres, so a
learned model has something to find; the volume swings from day to day as real ratings do.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from pathlib import Path

from recassets.movielens import GENRES
from recassets.movielens_layouts import OCCUPATIONS

START = dt.date(1997, 9, 20)


def write_history(
    folder: Path,
    days: int = 12,
    gap_days: tuple[int, ...] = (3, 7),
    users: int = 60,
    items: int = 90,
    ratings_per_day: int = 120,
    seed: int = 5,
    start: dt.date = START,
) -> dict[str, int]:
    """Write the three files into ``folder``; return the number of ratings per UTC day
    (``YYYY-MM-DD``), gap days included with 0."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    genre_of = {i: 1 + (i % (len(GENRES) - 1)) % 6 for i in range(1, items + 1)}
    taste = {u: 1 + rng.randrange(6) for u in range(1, users + 1)}
    lines, per_day = [], {}
    for d in range(days):
        day = start + dt.timedelta(days=d)
        n = 0 if d in gap_days else int(ratings_per_day * rng.uniform(0.5, 1.5))
        per_day[day.isoformat()] = n
        midnight = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())
        for _ in range(n):
            user = rng.randrange(1, users + 1)
            liked = [i for i, g in genre_of.items() if g == taste[user]]
            item = rng.choice(liked) if rng.random() < 0.7 else rng.randrange(1, items + 1)
            rating = (
                rng.choice((4, 5)) if genre_of[item] == taste[user] else rng.choice((1, 2, 3, 4))
            )
            lines.append(f"{user}\t{item}\t{rating}\t{midnight + rng.randrange(86_400)}")
    item_lines = []
    for i in range(1, items + 1):
        flags = "|".join("1" if g == genre_of[i] else "0" for g in range(len(GENRES)))
        item_lines.append(f"{i}|Movie {i} (1996)|01-Jan-1996||http://us.imdb.com/M/x|{flags}")
    jobs = ("student", "engineer", "writer", "other")
    # user 1's age is 0, as sources write "unknown": it lands null, the user and ratings kept
    user_lines = [
        f"{u}|{0 if u == 1 else 18 + u % 40}|{'MF'[u % 2]}|{jobs[u % len(jobs)]}|{10000 + u}"
        for u in range(1, users + 1)
    ]
    for name, rows in (("u.data", lines), ("u.item", item_lines), ("u.user", user_lines)):
        (folder / name).write_bytes("".join(r + "\n" for r in rows).encode("latin-1"))
    return per_day


def rewrite(src: Path, dst: Path, layout: str) -> Path:
    """The ml-100k folder ``src`` written again in another release's layout into ``dst``:
    ``ml-1m`` (``::`` .dat files with users.dat: ages and occupations as its codes), ``ml-10m``
    (the same without users.dat) or ``ml-latest`` (CSV with headers, titles quoted where they
    hold a comma or a quote; no user file). The same ratings and films either way, the genres
    as names in the flags' order (so the first one is the same)."""
    dst.mkdir(parents=True, exist_ok=True)
    ratings = [ln.split("\t") for ln in (src / "u.data").read_text("latin-1").splitlines() if ln]
    films = []
    for line in (src / "u.item").read_text("latin-1").splitlines():
        parts = line.split("|")
        named = [g for g, flag in zip(GENRES, parts[5:], strict=True) if flag == "1"]
        films.append((parts[0], parts[1], "|".join(named) or "(no genres listed)"))
    if layout in ("ml-1m", "ml-10m"):
        body = "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in ratings)
        (dst / "ratings.dat").write_bytes(body.encode("latin-1"))
        body = "".join(f"{m}::{title}::{genres}\n" for m, title, genres in films)
        (dst / "movies.dat").write_bytes(body.encode("latin-1"))
        if layout == "ml-1m":
            rows = []
            for line in (src / "u.user").read_text("latin-1").splitlines():
                uid, age, gender, job, zipcode = line.split("|")
                # an unknown age (0) stays unknown: it is no ml-1m code
                code = max(c for c in (0, 1, 18, 25, 35, 45, 50, 56) if c <= int(age))
                job_code = OCCUPATIONS.index(job) if job in OCCUPATIONS else 0
                rows.append(f"{uid}::{gender}::{code}::{job_code}::{zipcode}\n")
            (dst / "users.dat").write_bytes("".join(rows).encode("latin-1"))
        return dst
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["userId", "movieId", "rating", "timestamp"])
    w.writerows(ratings)
    (dst / "ratings.csv").write_text(out.getvalue(), encoding="utf-8")
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["movieId", "title", "genres"])
    w.writerows(films)
    (dst / "movies.csv").write_text(out.getvalue(), encoding="utf-8")
    return dst
