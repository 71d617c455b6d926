"""The serving decision log: one JSON object per ``/recommend`` and ``/rank`` answer (each answer
of a ``/recommend_batch`` is one ``recommend`` record, ``batch_ids``), landed as
JSON Lines files the way every producer lands data, and ingested into the Delta table
``serving_log`` by the asset ``lake/serving_log`` (the contract: ``recassets.events.SERVING_LOG``).

A record says what was served, to whom and by what (``decision``): the request id, the time
(UTC, ISO 8601), the endpoint, the user, each item with its score, the stages it passed and its
source (the stage that brought it in), the policy, the model versions, the features day and the
bento tag. From the request id, ``recassets lineage REQUEST_ID`` goes on into the bento's
lineage; and later training can join what was served with what was engaged.

Files: ``<landing>/serving_log/dt=YYYY-MM-DD/part-<time>-<pid>-<token>-<n>.jsonl``, the day of
each record's ``ts`` (ingestion puts a row whose timestamp is outside its folder's day in the
quarantine); names sort by the time they were written. Each is written under a dot-name and put
in place only where no file is (``recassets.atomic``, ``exclusive``): ingestion skips
dot-names, so it never reads half a file. Replicas share the folder (a ReadWriteMany volume)
and each has its own PID namespace, so the pid alone told no two apart: ``token`` is drawn per
writer, and a name that is taken all the same is never overwritten but drawn again. The
temporary files a writer killed mid-write left are removed when the thread starts (``sweep``).

What a request pays (``DecisionLog.append``): a sampling draw, the record's JSON line (about
50 us at k = 20) and an append to an in-memory list under a lock. The line is made on the
request's time, not in the flush: a worker has one core, so the flush's encoding of 500
records at once (about 25 ms, holding the GIL in 5 ms slices) stalled every request in flight
and made the tail (p99 51 ms at concurrency 8 against a p50 of 21 ms); spread over the
requests it costs the same and no request waits for it. A background thread flushes the
buffer into a new file every ``flush_records`` records or ``flush_interval_s`` seconds, and
``close`` (the service's shutdown) flushes what is left. The buffer is bounded in records
(``max_buffer``) and in bytes of JSON lines (``max_bytes``, 32 MiB: records of a large k or
a long /rank run to 100 KB each): past either a record is dropped, not queued; so is one that
comes after ``close``. A flush is due at half the bytes too, so large records are landed
before the bound drops them. The disk is bounded too, per worker: the records' bytes
within ``max_bytes_per_s`` (a token bucket holding ``BUDGET_WINDOW_S``, a minute, of it; a
/rank of 1,000 ids logs about 84 KB, and repeated ones grew the folder by 6.5 MB/s a worker):
past it a record is dropped, ``byte_budget``, warned at most once a minute. A write that fails (disk full, a permission, the folder not a folder) drops that
batch with a warning; the request it came from was answered long before. Every dropped record
is counted through ``on_drop`` (the service's Prometheus counter
``recassets_decision_log_dropped_total{reason}``).

Settings (``from_env``, read by the service): ``RECASSETS_DECISION_LOG_RATE`` (the share of
answers logged, 0..1, default 1: all, as at demo scale; 0 turns the log off),
``RECASSETS_DECISION_LOG_FLUSH_RECORDS`` (500; at most 5,000, half the buffer),
``RECASSETS_DECISION_LOG_FLUSH_S`` (5) and ``RECASSETS_DECISION_LOG_MAX_BYTES_PER_S`` (2 MiB).

/rank's records are not made compact (scores rounded, stages left out): a record's score is
the answer's, which ``recassets lineage`` shows next to the request, and ``stages`` is part of
the contract (``recassets.events.SERVING_LOG``); the byte budget bounds the disk instead.
"""

from __future__ import annotations

import datetime as dt
import errno
import itertools
import json
import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recassets import atomic

DATASET = "serving_log"  # the landing folder and the Delta table
RATE_ENV = "RECASSETS_DECISION_LOG_RATE"
FLUSH_RECORDS_ENV = "RECASSETS_DECISION_LOG_FLUSH_RECORDS"
FLUSH_S_ENV = "RECASSETS_DECISION_LOG_FLUSH_S"
MAX_BYTES_PER_S_ENV = "RECASSETS_DECISION_LOG_MAX_BYTES_PER_S"
# The disk's budget per worker: 2 MiB/s is about 2,000 answers a second at k = 20 (1 KB a
# record), more than a worker serves, so normal traffic never meets it; it binds on large
# records (84 KB for a /rank of 1,000 ids: 25 a second). Averaged over BUDGET_WINDOW_S, a
# minute's worth as a burst. Bounded: at least 1 KiB/s (one record), at most 1 GiB/s.
MIN_BYTES_PER_S, MAX_BYTES_PER_S = 1024, 1024**3
BUDGET_WINDOW_S = 60
MAX_BUFFER = 10_000  # records: about 10 MB at k = 20 (about 1 KB a record)
# ... and bytes (the records' JSON lines): a record is not 1 KB at every k (31 KB at k = 200,
# up to 104 KB for a /rank of 1,000 ids), and 10,000 of those held 0.3 to 1 GB on a stalled
# disk. 32 MiB: the default batch of 500 records at k = 200 (15.5 MB) still gathers under half
# of it (the byte trigger, below), so the flush keeps its cadence up to k = 200, and at k = 20
# the record bound is the one that binds (10 MB). Past it a record is dropped: ``buffer_bytes``.
MAX_BUFFER_BYTES = 32 * 1024 * 1024
# Every dropped record's reason (the service pre-registers each label of its counter).
DROP_REASONS = (
    "buffer_full", "buffer_bytes", "write_error", "unserializable", "closed", "byte_budget",
)  # fmt: skip
# RECASSETS_DECISION_LOG_FLUSH_RECORDS is refused above half the buffer rather than the buffer
# sized from it: the bound is the memory a stalled disk may cost, which a setting should not
# raise unsaid. At or above the bound the size trigger fired late or never, and every answer
# until the next timed flush was dropped; at half, the next batch gathers while one is written.
MAX_FLUSH_RECORDS = MAX_BUFFER // 2  # the bytes likewise: a flush is due at half MAX_BUFFER_BYTES
MIN_FLUSH_S, MAX_FLUSH_S = 0.05, 86_400.0  # RECASSETS_DECISION_LOG_FLUSH_S, seconds
REQUEST_ID_HEADER = "X-Request-Id"
NAME_TRIES = 5  # names drawn for one batch before it is dropped (a second is all but never due)
# The temporary name ``recassets.atomic`` gives a file of this module (the token is optional:
# the names written before it had none). Only these are swept, and only past STALE_TEMP_S: a
# live write, another replica's included, takes well under a second.
_TEMP_NAME = re.compile(r"\.part-\d{8}T\d{12}-\d+-(?:[0-9a-f]+-)?\d+\.jsonl\.tmp-\d+")
STALE_TEMP_S = 3600.0
SWEEP_DAYS = 3  # the newest day folders swept: where a writer killed of late was writing
# os.link's errors where the file system makes no hard links (EPERM on Linux, ENOTSUP elsewhere)
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP})
# A client's request id is kept when it is a short token of these characters: it goes into a
# file, a Delta table, logs and a command line (``recassets lineage REQUEST_ID``), and none of
# ':', '/', '@' or '.', so it can never read as a bento tag, a model version or TABLE@VERSION.
# Nor may it be a word the lineage command reads as something else ("latest", a table name):
# ``request_id`` asks the command's own parser (``_traceable``).
MAX_ID_CHARS = 64
_SAFE_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ID_CHARS}}}")
MODEL_KINDS = ("two_tower", "ranking")
# An ad's fields (``recassets.funnel.ads``), kept for ad items only: which campaign and
# advertiser, the price per click, the pCTR (and its source), the position it stood at, and
# ``cost``, the amount its impression was charged. Organic items carry none of them.
AD_FIELDS = ("ad", "campaign_id", "advertiser", "price", "pctr", "pctr_source", "slot", "cost")

log = logging.getLogger(__name__)


def request_id(header: str | None, *, answers: int = 0) -> str:
    """The client's ``X-Request-Id`` when it is a safe short token (``_SAFE_ID``: at most 64
    ASCII letters, digits, ``_`` and ``-``) that ``recassets lineage`` reads as a request id
    (not ``latest`` or a table name), else a new uuid4 hex: a long, non-ASCII, multi-line or
    untraceable header is replaced, never echoed into files and logs. ``answers``: the id of
    a batch of that many answers, short enough for each answer's ``batch_ids`` to be one."""
    room = len(f"-{answers - 1}") if answers > 0 else 0
    if (
        header is not None
        and len(header) + room <= MAX_ID_CHARS
        and _SAFE_ID.fullmatch(header)
        and _traceable(header)
    ):
        return header
    return uuid.uuid4().hex


def batch_ids(batch_id: str, n: int) -> list[str]:
    """The request ids of a batch's ``n`` answers: ``<batch_id>-<i>``, i from 0, in order
    (deterministic, so the client can find each answer in the log from the id it sent)."""
    return [f"{batch_id}-{i}" for i in range(n)]


def _traceable(text: str) -> bool:
    """Whether ``recassets lineage TEXT`` would trace ``text`` as a request id: the lineage
    parser's own rule, so the two cannot drift apart."""
    # Imported here: recassets.lineage.targets imports this module (is_request_id).
    from recassets.lineage.targets import TargetError, parse_target

    try:
        return parse_target(text).kind == "request"
    except TargetError:
        return False


def is_request_id(text: str) -> bool:
    """Whether ``text`` has the form of a request id this module keeps or makes."""
    return _SAFE_ID.fullmatch(text) is not None


def utc_now() -> str:
    """Now, UTC, ISO 8601 with microseconds and a ``Z`` (what ingestion parses)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def model_versions(manifest: Mapping[str, Any]) -> dict[str, str | None]:
    """``{"two_tower": "two_tower/0003", "ranking": "ranking/0002"}`` from a bundle manifest's
    lineage (the checkpoint names ``recassets lineage`` takes: the store folder and the
    number, so a sequence-aware ranker that serves reads ``sequence_ranking/0001``); None where
    the bento serves no model (the popularity policy)."""
    lineage = manifest.get("lineage") or {}
    out: dict[str, str | None] = {}
    for kind in MODEL_KINDS:
        checkpoint = (lineage.get(kind) or {}).get("checkpoint")
        out[kind] = (
            f"{Path(str(checkpoint)).parent.name}/{Path(str(checkpoint)).stem}"
            if checkpoint
            else None
        )
    return out


def bento_tag(service_dir: str | Path) -> str | None:
    """The tag of the bento whose ``src`` folder is ``service_dir`` (its ``bento.yaml`` one
    folder up), or None when the service does not run from a built bento (``bentoml serve
    service:RecommenderService`` in the repo)."""
    import yaml

    try:
        meta = yaml.safe_load((Path(service_dir).parent / "bento.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("version"):
        return None
    return f"{meta['name']}:{meta['version']}".lower()


def decision(
    *,
    request_id: str,
    endpoint: str,
    user_id: int,
    items: Iterable[Mapping[str, Any]],
    policy: str | None,
    features_day: str | None,
    models: Mapping[str, str | None],
    bento: str | None,
    ts: str | None = None,
) -> dict[str, Any]:
    """One decision record (``recassets.events.SERVING_LOG``'s fields): each item's id, score,
    stages and source (the first stage: retrieval, trending, popularity, backfill...), the
    candidate sources that proposed it where the blend merged them, and for an ad (source
    ``campaigns``) its billing fields (``AD_FIELDS``: campaign, advertiser, price, pCTR, slot,
    cost charged)."""
    return {
        "request_id": request_id,
        "ts": ts or utc_now(),
        "endpoint": endpoint,
        "user_id": user_id,
        "bento": bento,
        "policy": policy,
        "features_day": features_day,
        **{kind: models.get(kind) for kind in MODEL_KINDS},
        "items": [
            {
                "item_id": i["item_id"],
                "score": i["score"],
                "stages": list(i.get("stages", [])),
                "source": (i.get("stages") or [None])[0],
                # the blend order: every candidate source that proposed the item
                **({"sources": list(i["sources"])} if i.get("sources") else {}),
                # an ad: what was paid, by whom, for which slot (what billing audits)
                **({f: i[f] for f in AD_FIELDS if f in i} if i.get("ad") else {}),
            }
            for i in items
        ],
    }


@dataclass(frozen=True)
class Settings:
    rate: float = 1.0
    flush_records: int = 500
    flush_interval_s: float = 5.0
    max_bytes_per_s: int = 2 * 1024 * 1024  # the disk's budget per worker (MAX_BYTES_PER_S_ENV)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """From ``env`` (the service passes its environment); a value out of range or not a
        number is a ``ValueError`` naming the variable, at start-up, not at a request."""
        rate = _number(env, RATE_ENV, cls.rate, float)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{RATE_ENV}={rate}: expected a share between 0 and 1")
        records = _number(env, FLUSH_RECORDS_ENV, cls.flush_records, int)
        seconds = _number(env, FLUSH_S_ENV, cls.flush_interval_s, float)
        if not 1 <= records <= MAX_FLUSH_RECORDS:
            raise ValueError(
                f"{FLUSH_RECORDS_ENV}={records}: expected records between 1 and "
                f"{MAX_FLUSH_RECORDS} (half the {MAX_BUFFER}-record buffer)"
            )
        # bounded both ways: the flush thread waits this long at a time, and a wait past the
        # platform's limit (inf, 1e300: over threading.TIMEOUT_MAX) killed it at its first
        # wait, after which every record past the buffer's bound was dropped; a wait near zero
        # spun it. Records are still landed every FLUSH_RECORDS and at shutdown.
        if not MIN_FLUSH_S <= seconds <= MAX_FLUSH_S:
            raise ValueError(
                f"{FLUSH_S_ENV}={seconds}: expected seconds between {MIN_FLUSH_S} and "
                f"{MAX_FLUSH_S:.0f} (a day)"
            )
        per_s = _number(env, MAX_BYTES_PER_S_ENV, cls.max_bytes_per_s, int)
        if not MIN_BYTES_PER_S <= per_s <= MAX_BYTES_PER_S:
            raise ValueError(
                f"{MAX_BYTES_PER_S_ENV}={per_s}: expected bytes a second between "
                f"{MIN_BYTES_PER_S} and {MAX_BYTES_PER_S} (1 GiB)"
            )
        return cls(rate, records, seconds, per_s)


def _number(env: Mapping[str, str], name: str, default: Any, kind: type) -> Any:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name}={text[:40]!r}: expected a number") from None


class DecisionLog:
    """A bounded buffer of decision records and the thread that lands them (module docstring).

    ``on_drop(n, reason)`` is called for every dropped batch: ``buffer_full`` (records),
    ``buffer_bytes`` (bytes), ``write_error``, ``unserializable``, ``closed`` (appended after
    ``close``) or ``byte_budget`` (past ``max_bytes_per_s``): ``DROP_REASONS``. ``clock``:
    the budget's monotonic time (tests). ``background=False`` starts no
    thread: ``flush`` lands the buffer (tests, and a caller with its own loop), and nothing is
    swept (``sweep``)."""

    def __init__(
        self,
        landing: str | Path,
        settings: Settings | None = None,
        *,
        max_buffer: int = MAX_BUFFER,
        max_bytes: int = MAX_BUFFER_BYTES,
        on_drop: Callable[[int, str], None] | None = None,
        draw: Callable[[], float] = random.random,
        background: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = Path(landing) / DATASET
        self.settings = settings or Settings()
        self.max_buffer = max_buffer
        self.max_bytes = max_bytes
        self.on_drop = on_drop
        self._draw = draw
        self._buffer: list[tuple[str, bytes]] = []  # (day, JSON line) of each record
        self._bytes = 0  # the buffer's JSON lines, in bytes (``max_bytes``)
        self._unserializable = 0  # records refused since the last flush (warned there)
        self._lock = threading.Lock()  # guards _buffer and the setting of _closed: held for an
        # append, a swap or the close only
        self._flushing = threading.Lock()  # one flush at a time (the thread, close)
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._seq = itertools.count()
        self._token = uuid.uuid4().hex[:12]  # this writer's part of each file name (module doc)
        self._exclusive = True  # False once the volume is found to make no hard links
        # the byte budget: a bucket of BUDGET_WINDOW_S seconds of max_bytes_per_s, full at start
        self._clock = clock
        self._capacity = float(self.settings.max_bytes_per_s * BUDGET_WINDOW_S)
        self._tokens, self._filled_at = self._capacity, clock()
        self._over = 0  # records dropped past the budget since the last warning
        self._warned_at: float | None = None
        self.written = 0  # records landed by this process
        self._thread: threading.Thread | None = None
        if background and self.enabled:
            self._thread = threading.Thread(
                target=self._run, name="recassets-decision-log", daemon=True
            )
            self._thread.start()

    @property
    def enabled(self) -> bool:
        return self.settings.rate > 0

    def sampled(self) -> bool:
        """Whether this answer is logged (rate 1: always; 0: never, and no draw)."""
        rate = self.settings.rate
        return rate >= 1.0 or (rate > 0.0 and self._draw() < rate)

    def append(self, record: dict[str, Any]) -> bool:
        """Buffer ``record`` (already sampled) as its JSON line; False when it is no JSON (NaN, an
        object; dropped, counted, warned at the next flush), the buffer is full in records or in
        bytes (dropped, counted) or the log is closed (dropped, counted). Never raises on account of the record
        or the files."""
        try:
            line = json.dumps(record, separators=(",", ":"), allow_nan=False).encode() + b"\n"
            day = dt.date.fromisoformat(str(record["ts"])[:10]).isoformat()
        except (TypeError, ValueError, KeyError):
            with self._lock:
                self._unserializable += 1
            self._dropped(1, "unserializable")
            return False
        due, warn = False, 0
        with self._lock:
            # Checked under the lock ``close`` sets it under, so a record is either buffered
            # before close's flush swaps the buffer out, or refused here. Checked before the
            # line was made, a close in between left the record in a buffer nothing landed
            # again, and the answer reported as logged.
            closed = self._closed.is_set()
            full = not closed and len(self._buffer) >= self.max_buffer
            heavy = not (closed or full) and self._bytes + len(line) > self.max_bytes
            over = not (closed or full or heavy) and not self._spend(len(line))
            if over:
                warn = self._over_budget()
            elif not (closed or full or heavy):
                self._buffer.append((day, line))
                self._bytes += len(line)
                due = (
                    len(self._buffer) >= self.settings.flush_records
                    or self._bytes >= self.max_bytes // 2
                )
        if over:
            if warn:
                log.warning(
                    "decision log: %d record(s) dropped in the last %d s, over %s=%d bytes a "
                    "second (this worker's budget for the log's disk)",
                    warn, BUDGET_WINDOW_S, MAX_BYTES_PER_S_ENV, self.settings.max_bytes_per_s,
                )  # fmt: skip
            self._dropped(1, "byte_budget")
            return False
        if closed or full or heavy:
            self._dropped(1, "closed" if closed else "buffer_full" if full else "buffer_bytes")
            return False
        if due:
            self._wake.set()
        return True

    def flush(self) -> int:
        """Land the buffer: one new file per day of its records. Returns the records written;
        a failed write drops its records (counted, warned), it does not raise."""
        with self._flushing:
            with self._lock:
                batch, self._buffer, self._bytes = self._buffer, [], 0
                bad, self._unserializable = self._unserializable, 0
            if bad:
                log.warning("decision log: %d record(s) not JSON-serializable, dropped", bad)
            if not batch:
                return 0
            written = 0
            for day, lines in self._by_day(batch).items():
                written += self._write(day, lines)
            self.written += written
            return written

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the thread and land what is buffered; an ``append`` after it is refused.
        Idempotent."""
        with self._lock:
            self._closed.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        self.flush()

    def sweep(self, older_than_s: float = STALE_TEMP_S, *, now: float | None = None) -> int:
        """Remove this module's temporary files (``_TEMP_NAME``) older than ``older_than_s`` from
        the newest ``SWEEP_DAYS`` day folders: what a writer killed mid-write (SIGKILL, the OOM
        killer) left, which nothing else removes. Returns how many; never raises."""
        now = time.time() if now is None else now
        removed = 0
        try:
            days = sorted(p for p in self.root.glob("dt=*") if p.is_dir())[-SWEEP_DAYS:]
            for folder in days:
                for path in folder.iterdir():
                    if not _TEMP_NAME.fullmatch(path.name):
                        continue
                    try:
                        if now - path.lstat().st_mtime > older_than_s:
                            path.unlink()
                            removed += 1
                    except FileNotFoundError:
                        pass  # another replica's sweep was first
        except OSError as exc:
            log.warning("decision log: cannot sweep temporary files in %s: %s", self.root, exc)
        if removed:
            log.info("decision log: removed %d stale temporary file(s) in %s", removed, self.root)
        return removed

    # -- inside -------------------------------------------------------------------------

    def _spend(self, size: int) -> bool:
        """Take ``size`` bytes from the budget's bucket (refilled at ``max_bytes_per_s`` up to
        ``BUDGET_WINDOW_S`` of it) when it holds them; False, taking nothing, when not. Under
        ``_lock``."""
        now = self._clock()
        rate = self.settings.max_bytes_per_s
        self._tokens = min(self._capacity, self._tokens + (now - self._filled_at) * rate)
        self._filled_at = now
        if size > self._tokens:
            return False
        self._tokens -= size
        return True

    def _over_budget(self) -> int:
        """One more record past the budget: the count to warn of when a warning is due (the
        first, then at most one each ``BUDGET_WINDOW_S``), else 0. Under ``_lock``."""
        self._over += 1
        now = self._clock()
        if self._warned_at is not None and now - self._warned_at < BUDGET_WINDOW_S:
            return 0
        self._warned_at, count, self._over = now, self._over, 0
        return count

    def _run(self) -> None:
        self.sweep()  # here, not in __init__: the worker's start does not wait on the listing
        while not self._closed.is_set():
            self._wake.wait(self.settings.flush_interval_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the thread must outlive any one batch
                log.exception("decision log: flush failed")

    def _by_day(self, batch: list[tuple[str, bytes]]) -> dict[str, list[bytes]]:
        days: dict[str, list[bytes]] = {}
        for day, line in batch:
            days.setdefault(day, []).append(line)
        return days

    def _write(self, day: str, lines: list[bytes]) -> int:
        data = b"".join(lines)
        target, error = self.root / f"dt={day}", None  # what the warning names
        for _ in range(NAME_TRIES):
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")  # first: names sort by it
            name = f"part-{stamp}-{os.getpid()}-{self._token}-{next(self._seq):06d}.jsonl"
            target = self.root / f"dt={day}" / name
            try:
                self._publish(target, data)
                return len(lines)
            except FileExistsError as exc:  # taken (or the day's folder is a file): not replaced
                error = exc
            except Exception as exc:  # noqa: BLE001 - OSError mostly; nothing may reach a request
                error = exc
                break
        log.warning(
            "decision log: %d record(s) of %s dropped, cannot write %s: %s",
            len(lines), day, target, error,
        )  # fmt: skip
        self._dropped(len(lines), "write_error")
        return 0

    def _publish(self, target: Path, data: bytes) -> None:
        """Write ``data`` to ``target`` where no file is (``FileExistsError`` where one is).
        Exclusive creation is a hard link; on a volume that makes none (some SMB and FUSE
        mounts) the file is renamed into place instead, once warned: its name is still this
        writer's alone (the token), it is just not refused if taken all the same."""
        try:
            atomic.write_with(target, lambda f: f.write(data), exclusive=self._exclusive)
        except OSError as exc:
            if not self._exclusive or exc.errno not in _NO_LINKS:
                raise
            atomic.write_with(target, lambda f: f.write(data))  # another failure: a write error
            self._exclusive = False
            log.warning(
                "decision log: %s takes no hard links (%s): files are renamed into place",
                target.parent, exc,
            )  # fmt: skip

    def _dropped(self, n: int, reason: str) -> None:
        if self.on_drop is None:
            return
        try:
            self.on_drop(n, reason)
        except Exception:  # noqa: BLE001 - a metrics failure must not fail the caller either
            log.exception("decision log: counting %d dropped record(s) failed", n)


__all__ = [
    "AD_FIELDS",
    "DATASET",
    "DROP_REASONS",
    "MAX_BUFFER_BYTES",
    "MAX_BYTES_PER_S_ENV",
    "RATE_ENV",
    "REQUEST_ID_HEADER",
    "MAX_ID_CHARS",
    "DecisionLog",
    "Settings",
    "batch_ids",
    "bento_tag",
    "decision",
    "is_request_id",
    "model_versions",
    "request_id",
    "utc_now",
]
