"""Every setting a serving worker reads when it starts, read before ``bentoml serve`` starts.

A worker that meets a bad setting cannot say so well: a value read while BentoML imports the
service (``RECASSETS_SERVE_MAX_K``, ``..._WORKERS``) ends in BentoML's "No module named
'recassets_recommender'"; one read in the service's ``__init__`` (``..._CANDIDATES``, the
decision log's rate, the ads' settings) fails the worker's start-up, which BentoML restarts
every ten seconds, for ever, with the process alive; one read by the edge
(``..._BODY_TIMEOUT_S``) fails every request with a 500; one read by the worker's HTTP server
(the request head's bounds, ``..._MAX_HEAD_BYTES``, ``..._MAX_HEADERS``,
``..._HEAD_TIMEOUT_S``) stops the worker at start; and a token file that cannot be read
stopped ``recassets serve`` while the server it had launched kept running. ``check`` reads them
all, the same way (the same functions), from the environment the server will get, and raises
the first error, naming the variable and its value: ``recassets serve`` and
``recassets.bento.server.start`` call it before they launch anything, and the service calls it
first thing in ``__init__`` (a bare ``bentoml serve`` then fails at start with that message).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

# (variable, default, minimum): the integers the service module, its worker and the edge read
INTEGERS = (
    ("RECASSETS_SERVE_MAX_K", 200, 1),
    ("RECASSETS_SERVE_MAX_BATCH", 64, 1),
    ("RECASSETS_SERVE_MAX_BATCH_ITEMS", 1280, 1),
    ("RECASSETS_SERVE_WORKERS", 1, 1),
    ("RECASSETS_SERVE_API_THREADS", 1, 1),
    ("RECASSETS_SERVE_THREADS", 1, 1),
)


def check(env: Mapping[str, str], campaigns_file: Path | None = None) -> None:
    """Raise ``ValueError`` (``RuntimeError`` for the token file) naming the first setting of
    ``env`` a serving worker would refuse; ``campaigns_file``: the bundle's, read when
    ``RECASSETS_ADS_CAMPAIGNS`` does not name another."""
    from recassets.bento import decisions as D
    from recassets.bento.guard import (
        MAX_BODY_BYTES,
        MAX_BODY_ENV,
        body_timeout_from_env,
        token_from_env,
    )
    from recassets.bento.http_limits import limits_from_env
    from recassets.freshness import env_int
    from recassets.funnel.ads import CAMPAIGNS_ENV, AdsConfig, check_workers, state_kind
    from recassets.funnel.campaigns import load_campaigns
    from recassets.funnel.config import FunnelConfig

    token_from_env(env)
    body_timeout_from_env(env)
    limits_from_env(env)  # the request head's bounds (bytes, fields, seconds)
    env_int(MAX_BODY_ENV, MAX_BODY_BYTES, minimum=1, env=env)
    for name, default, minimum in INTEGERS:
        env_int(name, default, minimum=minimum, env=env)
    if FunnelConfig.from_mapping(env).embeddings == "redis" and not env.get("RECASSETS_REDIS_URL"):
        raise ValueError("RECASSETS_SERVE_EMBEDDINGS=redis needs RECASSETS_REDIS_URL")
    D.Settings.from_env(env)
    ads = AdsConfig.from_mapping(env)
    state_kind(env)  # RECASSETS_ADS_STATE: auto, process or redis (with RECASSETS_REDIS_URL)
    path = env.get(CAMPAIGNS_ENV) or campaigns_file
    campaigns = 0
    if path:
        try:
            campaigns = len(load_campaigns(path).campaigns)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
            where = f"{CAMPAIGNS_ENV}={path}" if env.get(CAMPAIGNS_ENV) else str(path)
            why = {FileNotFoundError: "no such campaigns file", IsADirectoryError: "a folder, "
                   "not a campaigns file"}.get(type(e), "the campaigns file cannot be read")  # fmt: skip
            raise ValueError(f"{where}: {why}") from None
    # several workers, each with counters of its own, would each spend every budget
    check_workers(env, campaigns if ads.enabled else 0)


__all__ = ["INTEGERS", "check"]
