"""Spark session settings that one ingestion holds while it runs, and restores after.

Owns the settings that made ingestion faster without changing its rows: an uncompressed cache
for the checked rows (``_uncompressed_cache``) and even splits for the file reads
(``_even_splits``). Each is set for the ingestion only (``_session_conf``), since the session
is shared and outlives it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@contextlib.contextmanager
def _session_conf(spark: SparkSession, key: str, value: str) -> Generator[None, None, None]:
    """The session's ``key`` is ``value`` inside; its own value is restored after."""
    before = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def _uncompressed_cache(spark: SparkSession) -> contextlib.AbstractContextManager[None]:
    """Caches declared inside (``persist``) are not compressed.

    Compressing the cache cost a third of the parse-and-check stage (2.5 of 9 CPU seconds per
    million events) to save memory that the cache holds for one ingestion only. ``persist``
    plans the cached query on a copy of the session's settings, so the setting only needs to
    hold while it is called.
    """
    return _session_conf(spark, "spark.sql.inMemoryColumnarStorage.compressed", "false")


def _even_splits(spark: SparkSession) -> contextlib.AbstractContextManager[None]:
    """File reads inside are cut into about four splits per core, not one.

    Spark packs files into splits of about (total bytes / cores), plus an open cost per file,
    which rarely comes out even: five files of 44 MiB on two cores made three splits, the
    third read alone while the other core idled, so each stage that reads the files or their
    cache (parsing, writing) took a fifth longer than even work would. Four per core leave at
    worst a small split to finish alone; tiny inputs stay one split (the open cost, 4 MiB, is
    the floor). The table gets more files per day (one per split of the day: ten instead of
    three for a million events). Set around the whole ingestion: its text and JSON reads of
    the same files are matched split by split, so they must plan alike. A value the session
    chose is kept, and so is Spark's plan where there is no SparkContext to count cores
    (Spark Connect).
    """
    key = "spark.sql.files.minPartitionNum"
    try:
        cores = spark.sparkContext.defaultParallelism
    except Exception:  # Spark Connect has no SparkContext
        return contextlib.nullcontext()
    if spark.conf.get(key, None) is not None:
        return contextlib.nullcontext()
    return _session_conf(spark, key, str(4 * cores))
