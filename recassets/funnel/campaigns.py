"""Ad campaigns: the contract of a campaigns file, its loader and what a bundle carries of it.

A campaign promotes one catalog item with a bid per click and a daily budget (``Campaign``).
The synthetic world lands its campaigns at ``<landing>/ads/campaigns.json``
(``recassets.synthetic.ads``) as ``{"campaigns": [{...}, ...]}``, one object per campaign
with the fields of ``Campaign`` (``categories``: null or a list of category names). The
bento's bundle copies the file (``bundle_campaigns``) and the service serves it
(``recassets.funnel.ads``).

Validation is by row, like the landing contracts: a bad row is reported naming the file, the
row (1-based) and the field (``RowError``), and set aside (``CampaignLoad.rejected``; the
bundle keeps those rows with their errors in ``ads/campaigns.rejected.json``), never silently
dropped; an unknown field is an error (a misspelt ``budget`` would otherwise vanish). A file
that is not such an object at all raises ``CampaignFileError``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LANDING_FOLDER = "ads"
FILE_NAME = "campaigns.json"
BUNDLE_FILE = f"ads/{FILE_NAME}"
REJECTED_FILE = "ads/campaigns.rejected.json"
_INT64 = 2**63 - 1
_FIELDS = ("campaign_id", "advertiser", "item_id", "bid", "daily_budget", "categories")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Campaign:
    """One advertiser's promotion of one catalog item. Money is in one currency unit, bids per
    click, budgets per UTC day; ``categories`` None runs on any page."""

    campaign_id: str
    advertiser: str
    item_id: int
    bid: float
    daily_budget: float
    categories: frozenset[str] | None = None


class CampaignFileError(ValueError):
    """A campaigns file that cannot be read at all (not JSON, not ``{"campaigns": [...]}``)."""


@dataclass(frozen=True)
class RowError:
    file: str
    row: int  # 1-based position in the file's "campaigns" list
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: row {self.row}, field {self.field}: {self.message}"


@dataclass(frozen=True)
class CampaignLoad:
    campaigns: tuple[Campaign, ...]
    rejected: tuple[RowError, ...] = ()
    rejected_rows: tuple[Any, ...] = ()  # the raw rows set aside, in the order of ``rejected``


def _row_error(row: Any) -> tuple[str, str] | None:
    """(field, message) of the first thing wrong with one row, or None."""
    if not isinstance(row, dict):
        return "*", f"must be an object, got {type(row).__name__}"
    unknown = sorted(set(row) - set(_FIELDS))
    if unknown:
        return unknown[0], f"unknown field (the fields are {', '.join(_FIELDS)})"
    for key in ("campaign_id", "advertiser"):
        v = row.get(key)
        if not isinstance(v, str) or not v.strip():
            return key, f"must be a non-empty string, got {v!r}"
    item = row.get("item_id")
    if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= _INT64:
        return "item_id", f"must be an integer within 0..2**63-1, got {item!r}"
    for key in ("bid", "daily_budget"):
        v = row.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return key, f"must be a positive number, got {v!r}"
        try:
            number = float(v)
        except OverflowError:  # an integer of 400 digits: no double holds it (math.isfinite raised)
            digits = int(abs(int(v)).bit_length() * math.log10(2)) + 1  # str() may refuse it
            return (
                key,
                f"must be a positive number a double holds, got an integer of {digits} digits",
            )
        if not (math.isfinite(number) and number > 0):
            return key, f"must be a positive number, got {v!r}"
    cats = row.get("categories")
    if cats is not None and not (
        isinstance(cats, list) and cats and all(isinstance(c, str) and c for c in cats)
    ):
        return "categories", f"must be null or a non-empty list of category names, got {cats!r}"
    return None


def parse_campaigns(obj: Any, name: str) -> CampaignLoad:
    """Validate a parsed campaigns document; ``name`` is the file it came from (in errors)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("campaigns"), list):
        raise CampaignFileError(f'{name}: must be a JSON object {{"campaigns": [...]}}')
    good: list[Campaign] = []
    bad: list[RowError] = []
    raw: list[Any] = []
    ids: set[str] = set()
    for n, row in enumerate(obj["campaigns"], start=1):
        problem = _row_error(row)
        if problem is None and row["campaign_id"] in ids:
            problem = ("campaign_id", f"duplicate of an earlier row: {row['campaign_id']!r}")
        if problem is not None:
            bad.append(RowError(name, n, *problem))
            raw.append(row)
            continue
        ids.add(row["campaign_id"])
        cats = row.get("categories")
        good.append(
            Campaign(row["campaign_id"], row["advertiser"], int(row["item_id"]),
                     float(row["bid"]), float(row["daily_budget"]),
                     frozenset(cats) if cats is not None else None)
        )  # fmt: skip
    return CampaignLoad(tuple(good), tuple(bad), tuple(raw))


def load_campaigns(path: str | Path) -> CampaignLoad:
    """The campaigns of a file; bad rows are in ``rejected``, each logged as a warning."""
    path = Path(path)
    return _load_bytes(path.read_bytes(), path)


def _load_bytes(data: bytes, path: Path) -> CampaignLoad:
    """The campaigns of ``data``, the bytes of the file ``path`` (named in errors)."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CampaignFileError(f"{path}: not JSON: {exc}") from exc
    loaded = parse_campaigns(obj, str(path))
    for error in loaded.rejected:
        log.warning("campaign row set aside: %s", error)
    return loaded


def campaigns_path(landing: str | Path) -> Path:
    """Where campaigns land: ``<landing>/ads/campaigns.json``."""
    return Path(landing) / LANDING_FOLDER / FILE_NAME


def bundle_campaigns(source: Path, bundle: Path) -> dict[str, Any] | None:
    """Copy the landed campaigns file into a bundle being written (``ads/campaigns.json``) and
    its rejected rows beside it (``ads/campaigns.rejected.json``, each with the errors); the
    lineage record, with the sha256 ``Bundle.load`` checks; None without a file.

    The file is read once: the bytes validated are the bytes written and hashed (parsing the
    file and then copying it from its path again let a landing file replaced in between into
    the bundle unvalidated, with another file's counts)."""
    if not source.is_file():
        return None
    data = source.read_bytes()
    loaded = _load_bytes(data, source)  # a file that cannot be read at all fails the bundle
    target = bundle / BUNDLE_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    record: dict[str, Any] = {
        "source": str(source),
        "sha256": hashlib.sha256(data).hexdigest(),
        "campaigns": len(loaded.campaigns),
        "rejected": len(loaded.rejected),
    }
    if loaded.rejected:
        rejected = [
            {"row": e.row, "field": e.field, "error": e.message, "value": r}
            for e, r in zip(loaded.rejected, loaded.rejected_rows, strict=True)
        ]
        (bundle / REJECTED_FILE).write_text(json.dumps(rejected, indent=2, default=str) + "\n")
        record["rejected_file"] = REJECTED_FILE
    return record


__all__ = [
    "BUNDLE_FILE",
    "REJECTED_FILE",
    "Campaign",
    "CampaignFileError",
    "CampaignLoad",
    "RowError",
    "bundle_campaigns",
    "campaigns_path",
    "load_campaigns",
    "parse_campaigns",
]
