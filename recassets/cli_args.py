"""The command line's argument rules: each refuses a bad value before any work, naming it
(argparse types for numbers, ports and days; ``selected`` for ``--select``)."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence


def positive(text: str) -> int:
    """An argparse type: an integer of 1 or more (``--k -1`` was a slice: all but the last)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def port(text: str) -> int:
    value = positive(text)
    if value > 65_535:
        raise argparse.ArgumentTypeError(f"a TCP port is 1..65535, got {value}")
    return value


def day(text: str) -> str:
    """An argparse type: a YYYY-MM-DD date."""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def selected(select: str | None, default: Sequence[str], more: Sequence[str]) -> Sequence[str]:
    """``--select``'s keys, each one of ``default`` or ``more`` (what the CLI materializes);
    none given: ``default``. An unknown key (a typo) or an empty list (an unset shell
    variable) is refused here, before Spark or Dagster start, naming it: not a failed run to
    read the end of, nor everything."""
    if select is None:
        return default
    keys = [k.strip() for k in select.split(",") if k.strip()]
    known = (*default, *more)
    unknown = [k for k in keys if k not in known]
    if unknown or not keys:
        what = f"unknown asset {', '.join(unknown)}" if unknown else "no asset given"
        raise SystemExit(f"recassets materialize --select: {what}; choose from {', '.join(known)}")
    return keys


__all__ = ["day", "port", "positive", "selected"]
