"""The settings runs read from the environment, parsed when the code location loads.

A run reads its settings late: the training step when it picks its launcher, the bento step
after it has built the bento. A bad value found there fails the run after its side effects
(``RECASSETS_EMBEDDINGS_KEEP_BENTOS=abc`` once the bento was in the store and the rows in
Redis), or in silence (``RECASSETS_SERVE_EMBEDDINGS=redsi`` published nothing). ``check`` parses
every one of them now, with the parser the run uses, and raises the first error naming the
variable: ``resources.check_settings`` calls it (through ``freshness.check_run_settings``) when
the code location loads, and the CLI before it launches a run.

The rule every parser here keeps: a value blank or of white space alone is unset (the default),
the white space around a value is dropped, and a value that does not parse, or is out of
bounds, is refused naming the variable and the value. ``MAXIMA`` bounds the counts and
intervals no deployment comes near: a typo of a few digits more is refused, not obeyed.

This module loads no heavy library (the definitions load it: ``tests/unit/test_layering.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# variable -> (the largest value it takes, why no deployment goes past it). ``env_int`` applies
# the bound wherever the variable is read (the run, the sensor, the server, this check).
MAXIMA: dict[str, tuple[int, str]] = {
    # local ranks of one machine, one per GPU (or core): no single host has 1024
    "RECASSETS_TRAIN_PROCESSES": (1024, "local training ranks of one machine"),
    # pods of one training Job, each a rank with a copy of the dense model
    "RECASSETS_TRAIN_NODES": (1024, "pods of one training Job"),
    # worker processes of one server, each holding the models in memory: one per core at most
    "RECASSETS_SERVE_WORKERS": (1024, "worker processes of one server"),
    # request threads per worker; the models' own threads are RECASSETS_SERVE_THREADS
    "RECASSETS_SERVE_API_THREADS": (1024, "request threads of one worker"),
    # a landing sensor that ticks less than daily would miss the daily partitions it starts
    "RECASSETS_SENSOR_INTERVAL_S": (86_400, "one day, in seconds"),
    # the landing sensor's own interval, the same reason (sensors/landing.py)
    "RECASSETS_LANDING_INTERVAL_S": (86_400, "one day, in seconds"),
    # files unchanged for a day have settled: a longer wait holds back a day's data for ever
    "RECASSETS_LANDING_SETTLE_SECONDS": (86_400, "one day, in seconds"),
    # a Spark master or Connect server not answering within an hour is down, not slow
    "RECASSETS_SPARK_CONNECT_TIMEOUT_S": (3_600, "one hour, in seconds"),
}


def env_int(
    name: str,
    default: int,
    minimum: int = 0,
    env: Mapping[str, str] | None = None,
    maximum: int | None = None,
) -> int:
    """An integer setting from the environment (or ``env``), with a message naming it when it
    is wrong. Blank or unset: ``default``. ``maximum`` (default: the variable's bound in
    ``MAXIMA``, if any) is the largest value taken."""
    raw = (os.environ if env is None else env).get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw[:40]!r}: expected an integer") from None
    if value < minimum:
        raise ValueError(f"{name}={value}: expected at least {minimum}")
    why = ""
    if maximum is None and name in MAXIMA:
        maximum, why = MAXIMA[name][0], f" ({MAXIMA[name][1]})"
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={raw.strip()[:40]}: expected at most {maximum}{why}")
    return value


def env_nonnegative(env: Mapping[str, str], name: str, default: float, kind: type) -> float:
    """A number 0 or more (``kind``: ``int`` or ``float``) from ``env``; blank: ``default``."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if not value >= 0:
        raise ValueError(f"{name}={raw[:40]!r}: expected a number, 0 or more")
    return value


# --- the bento step -------------------------------------------------------------------------

# RECASSETS_BENTO_TORCH: the torch the bento installs. ``cpu``: torch's CPU build, none of the
# CUDA wheels (recassets.bento.bundle, which re-exports these).
TORCH_ENV = "RECASSETS_BENTO_TORCH"
TORCH_VARIANTS = ("pypi", "cpu")


def torch_variant(env: Mapping[str, str] | None = None) -> str:
    """``RECASSETS_BENTO_TORCH`` (default ``pypi``), refused naming the variable otherwise."""
    got = (os.environ if env is None else env).get(TORCH_ENV, "pypi").strip().lower() or "pypi"
    if got not in TORCH_VARIANTS:
        raise ValueError(f"{TORCH_ENV}={got!r}: expected one of {', '.join(TORCH_VARIANTS)}")
    return got


# Publishing the models' embedding rows (recassets.funnel.embedding_store, which re-exports these)
EMBEDDINGS_ENV = "RECASSETS_SERVE_EMBEDDINGS"  # process (default) | redis
KEEP_BENTOS_ENV, KEEP_BENTOS = "RECASSETS_EMBEDDINGS_KEEP_BENTOS", 3
KEEP_HOURS_ENV, KEEP_HOURS = "RECASSETS_EMBEDDINGS_KEEP_HOURS", 24.0


def embeddings_store(env: Mapping[str, str]) -> str:
    """``RECASSETS_SERVE_EMBEDDINGS``: ``process`` (default) or ``redis``, read by
    ``FunnelConfig``'s rule (the one the serving workers apply), so that the build publishes
    the rows exactly when the workers will look for them in Redis."""
    from recassets.funnel.config import ENV, FunnelConfig

    return FunnelConfig.from_mapping({ENV["embeddings"]: env.get(EMBEDDINGS_ENV) or ""}).embeddings


@dataclass(frozen=True)
class Publishing:
    """What a bento build does with the models' embedding rows (``publishing``)."""

    to_redis: bool  # RECASSETS_SERVE_EMBEDDINGS=redis
    redis_url: str | None  # RECASSETS_REDIS_URL
    keep_bentos: int  # the models of the newest n bentos stay in Redis...
    keep_hours: float  # ...and any model published within that many hours

    def url(self) -> str:
        """Where the rows go; refused naming both variables when no Redis is given."""
        if not self.redis_url:
            from recassets.featurestore.config import REDIS_URL_ENV

            raise ValueError(f"{EMBEDDINGS_ENV}=redis needs {REDIS_URL_ENV} to publish the rows to")
        return self.redis_url


def publishing(env: Mapping[str, str], *, need_url: bool = True) -> Publishing:
    """The publishing settings of ``env``, all parsed (``need_url``: with ``redis``, a Redis
    URL is required now rather than when the rows are published)."""
    from recassets.featurestore.config import REDIS_URL_ENV

    out = Publishing(
        to_redis=embeddings_store(env) == "redis",
        redis_url=(env.get(REDIS_URL_ENV) or "").strip() or None,
        keep_bentos=int(env_nonnegative(env, KEEP_BENTOS_ENV, KEEP_BENTOS, int)),
        keep_hours=float(env_nonnegative(env, KEEP_HOURS_ENV, KEEP_HOURS, float)),
    )
    if need_url and out.to_redis:
        out.url()
    return out


# --- every setting a run reads ----------------------------------------------------------------


def check(environ: Mapping[str, str]) -> None:
    """Parse every setting a run (or the code location's sensors) reads, with the run's own
    parser; raise the first bad one's ``ValueError``, naming its variable."""
    from recassets.freshness import (
        DEFAULT_SETTLE_S,
        DEFAULT_SETTLE_TIMEOUT_S,
        SETTLE_ENV,
        SETTLE_TIMEOUT_ENV,
    )
    from recassets.quality.checks import parse_volume_band
    from recassets.spark_settings import check_spark
    from recassets.training import settings as training

    parse_volume_band(environ.get("RECASSETS_VOLUME_BAND"))  # the quality checks
    env_int(SETTLE_ENV, DEFAULT_SETTLE_S, env=environ)  # the ingestion and the landing sensor
    env_int(SETTLE_TIMEOUT_ENV, DEFAULT_SETTLE_TIMEOUT_S, env=environ)
    env_int("RECASSETS_SENSOR_INTERVAL_S", 30, minimum=1, env=environ)  # sensors/landing.py
    check_spark(environ)  # every Spark step (SparkResource): conf, memory, master, Connect URL
    training.check(environ)  # the training steps: processes, row-wise tables, the launcher
    torch_variant(environ)  # the bento step: the build...
    publishing(environ)  # ...and the embedding rows it publishes


__all__ = [
    "EMBEDDINGS_ENV",
    "KEEP_BENTOS",
    "KEEP_BENTOS_ENV",
    "KEEP_HOURS",
    "KEEP_HOURS_ENV",
    "MAXIMA",
    "TORCH_ENV",
    "TORCH_VARIANTS",
    "Publishing",
    "check",
    "embeddings_store",
    "env_int",
    "env_nonnegative",
    "publishing",
    "torch_variant",
]
