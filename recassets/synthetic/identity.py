"""Which synthetic world a landing zone holds, recorded at ``<landing>/.synthetic.json``.

Ids name a world's users and items: user 1 of seed 7 is not user 1 of seed 8, nor of seed 7
started on another day. ``days.conflicts`` compares only the days a generation writes, so a
second world in other days landed beside the first without a word (one lake, two populations
under the same ids), and its ``ads/campaigns.json`` replaced the first's. The record names the
world by ``SyntheticConfig.world_key`` less the horizon (``days``): a longer horizon of one
world lands the same first days byte for byte (``tests/unit/test_synthetic.py``), so growing
it stays allowed; any other world is refused while the zone holds synthetic files.

A dot-name at the zone's root: the landing sensor, ingestion and ``landing.others_landed`` read
only ``<dataset>/dt=*/`` folders (and skip dot-names there too).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from recassets import atomic
from recassets.funnel.campaigns import campaigns_path
from recassets.landing import others_landed
from recassets.paths import Paths
from recassets.synthetic.world import SyntheticConfig

RECORD = ".synthetic.json"
# world_key's fields, less ``days``, in its order: what makes two configs one world.
FIELDS = ("seed", "start", "initial_users", "initial_items", "new_users_per_day",
          "new_items_per_day", "n_categories", "n_creators")  # fmt: skip
# The CLI flags of the fields ``recassets generate`` sets; the others are library knobs.
FLAGS = {"seed": "--seed", "start": "--start"}


def record_path(paths: Paths) -> Path:
    return Path(paths.landing) / RECORD


def world_identity(config: SyntheticConfig) -> dict[str, Any]:
    """The fields that name ``config``'s world, as JSON values (``start`` an ISO day)."""
    key = dict(zip(("seed", "start", "days", *FIELDS[2:]), config.world_key(), strict=True))
    return {f: key[f].isoformat() if isinstance(key[f], dt.date) else key[f] for f in FIELDS}


def _synthetic_files(paths: Paths, limit: int) -> list[Path]:
    """Up to ``limit`` landing files a generation writes: events, users and items files that
    are not a MovieLens import's (``movielens.*``), and the campaigns file."""
    found = others_landed(paths, own=lambda f: f.stem == "movielens", limit=limit)
    ads = campaigns_path(paths.landing)
    return found + [ads] if ads.is_file() and len(found) < limit else found


def _describe(world: dict[str, Any], other: dict[str, Any]) -> str:
    """``world`` by seed and start, and by each other field where it differs from ``other``."""
    named = [f"seed {world.get('seed')}", f"start {world.get('start')}"]
    named += [f"{f} {world.get(f)}" for f in FIELDS[2:] if world.get(f) != other.get(f)]
    return ", ".join(named)


def check_world(paths: Paths, config: SyntheticConfig) -> None:
    """``FileExistsError`` when the landing zone holds synthetic files of another world than
    ``config``'s (its record says so), naming both and the ways out. A record whose files are
    all gone (their folders removed) is stale and no longer binds. A zone without a record
    passes (see below): from then on the record binds."""
    wanted = world_identity(config)
    try:
        recorded = json.loads(record_path(paths).read_text())
    except FileNotFoundError:
        recorded = None
    except (OSError, ValueError) as e:  # unreadable: say so, rather than guess
        raise FileExistsError(
            f"generate: {record_path(paths)} cannot be read ({e}); it names the synthetic "
            "world the landing zone holds: remove it only if the zone holds no other world's "
            "files; nothing was written"
        ) from None
    if recorded == wanted:
        return
    if not isinstance(recorded, dict):
        # A zone without a record (landed before records existed, or holding a producer's
        # own files beside a generation) cannot tell another world's files from data of
        # the user's own, which generate has always left alone outside the days it writes:
        # it passes as before (``days.conflicts`` still compares the days written), and the
        # record written now binds every later generation.
        return
    held = _synthetic_files(paths, limit=4)
    if not held:
        return
    shown = ", ".join(str(f.relative_to(paths.landing)) for f in held[:3])
    again = " ".join(f"{FLAGS[f]} {recorded.get(f)}" for f in FLAGS)
    raise FileExistsError(
        f"generate: the landing zone {paths.landing} holds the synthetic world of "
        f"{_describe(recorded, wanted)} ({shown}{' and more' if len(held) > 3 else ''}), and "
        f"this generation is another ({_describe(wanted, recorded)}): its ids would name "
        "other users and items in the same lake, and its campaigns replace the landed ones. "
        "Use another RECASSETS_HOME, or start this one over (`make clean-home` removes the "
        f"home, its lake with it); to add days to the landed world, generate it again with "
        f"{again} and a larger --days; nothing was written"
    )


def record_world(paths: Paths, config: SyntheticConfig) -> None:
    """Record ``config``'s world as the one the landing zone holds (atomically; the same
    record is left untouched, as the landing files are)."""
    target = record_path(paths)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(world_identity(config), indent=2, sort_keys=True) + "\n"
    atomic.write_bytes_if_changed(target, text.encode("utf-8"))
