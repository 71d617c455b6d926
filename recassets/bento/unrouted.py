"""Paths no route serves stay out of BentoML's request metrics.

BentoML's traffic-metrics middleware labels each request's series with its path as sent
(``endpoint=scope["path"]``): every distinct path becomes new series of its request counter,
its duration histogram and its in-progress gauge, kept for the life of the worker. A scanner
trying paths grows ``/metrics`` without bound: a probe's 3,900 made it 19 MB and 5 s to render
(2026-12-05). The middleware sits outside the service's own (``Guard``), so nothing the
service adds with ``add_asgi_middleware`` runs before it.

``install`` makes it treat a path that no ``Route`` of the app matches as it already treats
``/metrics``: passed on unmeasured. Such a request is still answered as before (the router's
404, the Guard's 401 without a token) and still written to the access log with its path, and
it is counted once, in ``recassets_unrouted_requests_total`` (no label). Routes are matched
by path (a known path with the wrong method is routed, and measured: its series are bounded
by the routes); mounted apps (BentoML's static docs) are matched by prefix, so a path under
one is not counted as routed and is not measured either. A path with a control character
(``/recommend%0A``, which ``^/recommend$`` matches) is unrouted too: the Guard answers it 400.

BentoML has no setting for this; the patch replaces ``__call__`` of its two traffic-metrics
classes (``bentoml._internal.server.http.instruments``, pinned by the lock), once per process,
and leaves any other request to the method it replaced. Checked over HTTP in
``tests/integration/test_serving.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import Match, Route, WebSocketRoute

from recassets.bento.http_limits import bad_path

_PATCHED = "_recassets_unrouted"
_KNOWN_PATHS = 1_024  # routed paths remembered per middleware (the routes hold no parameters)


def router_of(app: Any, depth: int = 32) -> Any:
    """The innermost app holding ``routes`` down the ``.app`` chain of middlewares (the
    service's router), or None."""
    for _ in range(depth):
        if app is None or hasattr(app, "routes"):
            return app
        app = getattr(app, "app", None)
    return None


def routed(router: Any, scope: dict[str, Any]) -> bool:
    """Whether a route of ``router`` matches the request's path (any method): a ``Route`` for
    HTTP, a ``WebSocketRoute`` for a websocket (the service has none, so every websocket is
    unrouted: an ``Upgrade`` to made-up paths had added series too)."""
    return any(
        isinstance(route, (Route, WebSocketRoute)) and route.matches(scope)[0] is not Match.NONE
        for route in router.routes
    )


def install(count: Callable[[], None]) -> None:
    """Patch BentoML's traffic-metrics middlewares so that a request no route serves passes
    unmeasured; ``count`` is called once for each such request."""
    from bentoml._internal.server.http import instruments

    for cls in (
        instruments.RunnerTrafficMetricsMiddleware,
        instruments.HTTPTrafficMetricsMiddleware,
    ):
        if getattr(cls, _PATCHED, False):
            continue
        measured = cls.__call__

        async def __call__(
            self: Any, scope: Any, receive: Any, send: Any, _measured: Any = measured
        ) -> None:
            path, kind = scope.get("path"), scope.get("type")
            if kind in ("http", "websocket") and path != "/metrics":
                if bad_path(path or ""):  # "/recommend\n" matches "^/recommend$": the Guard's 400
                    count()
                    await self.app(scope, receive, send)
                    return
                known = self.__dict__.get(_PATCHED)
                if known is None:  # the router, found once per middleware instance
                    known = self.__dict__[_PATCHED] = (router_of(self.app), set())
                router, seen = known
                # a path a route matched is matched again without the routes' regexes (the
                # hot path: /recommend); the set holds only such paths, at most _KNOWN_PATHS
                if router is not None and (kind, path) not in seen:
                    if not routed(router, scope):
                        count()
                        await self.app(scope, receive, send)
                        return
                    if len(seen) < _KNOWN_PATHS:
                        seen.add((kind, path))
            await _measured(self, scope, receive, send)

        cls.__call__ = __call__
        setattr(cls, _PATCHED, True)


def no_websockets() -> None:
    """Have uvicorn serve no websocket in this process (``ws="none"``, which BentoML's worker
    does not expose): the service has no websocket route, and a POST with ``Upgrade:
    websocket`` was handed to uvicorn's websocket protocol, which never answered it (330 s,
    nothing logged), before the edge could. Now it is a plain request, which the edge answers
    with its 400 naming the header, as it does ``h2c``; uvicorn logs a WARNING line for it.

    The same patch has uvicorn's httptools protocol bound the size and the time of a request's
    head (``recassets.bento.http_limits``; BentoML's worker exposes no protocol either), with
    the limits read from the environment now: a bad setting stops the worker at start. A
    server configured for ``h11`` keeps it (and its own bounds). Without httptools installed
    the patch refuses (a ``RuntimeError`` naming it) rather than serve with no bounds."""
    import os

    import uvicorn.config

    from recassets.bento import http_limits

    config = uvicorn.config.Config
    if getattr(config, _PATCHED, False):
        return
    load = config.load
    limits = http_limits.limits_from_env(os.environ)  # before the import: a bad setting stops
    try:
        limited: Any = http_limits.protocol(limits)
    except ImportError as e:
        # Without httptools uvicorn's "auto" is h11 and the head bounds the operator set (and
        # preflight checked) would silently not apply: the bento's own environment lacked it
        # until 2026-12-07 and answered a 100 KB header with 200. Refused, naming the package.
        raise RuntimeError(
            f"the request head limits need uvicorn's httptools protocol ({e}): install "
            "httptools (deploy/serving.lock pins it); the worker does not serve without them"
        ) from e

    def load_without_websockets(self: Any, _load: Any = load) -> None:
        self.ws = "none"
        if self.http in ("auto", "httptools"):
            self.http = limited
        _load(self)

    config.load = load_without_websockets
    setattr(config, _PATCHED, True)


__all__ = ["install", "no_websockets", "routed", "router_of"]
