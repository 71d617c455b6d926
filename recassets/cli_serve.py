"""``recassets serve``: a bento in the foreground until interrupted (``recassets.cli`` parses
the command line and passes its printer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recassets.paths import Paths


def serve(tag: str | None, port: int | None, say: Callable[[str], None]) -> None:
    """Serve ``tag`` (default the newest bento) on ``port``, recorded for ``recassets status``
    and refused at once without an item catalogue (``server.start``); says when the bento
    carries other code than this install's (``recassets.bento.code``: after an upgrade the
    stored bentos keep the code they were built with); Ctrl-C or SIGTERM stops it."""
    import signal

    from recassets.bento import bundle as B
    from recassets.paths import Paths

    paths = Paths.from_env()
    tag = tag or B.latest_bento(paths)

    def stop_on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (a supervisor, `kill`) stops the server too

    # Installed before the start: a SIGTERM while the server gets ready ends ``start``, which
    # stops its server; the default handler ended this process and left `bentoml serve` (its
    # own session) running. The caller's handler is put back when the server has stopped.
    previous = signal.signal(signal.SIGTERM, stop_on_term)
    try:
        _serve(paths, tag, port, say)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve(paths: Paths, tag: str | None, port: int | None, say: Callable[[str], None]) -> None:
    from recassets.bento import server
    from recassets.bento.code import REBUILD, bento_differs

    try:
        srv = server.start(paths, tag, port=port, record=True,
                           catalogue_wait_s=server.SERVE_CATALOGUE_WAIT_S)  # fmt: skip
    except (OSError, RuntimeError, ValueError) as e:  # OSError: a record not written, a timeout
        raise SystemExit(f"recassets serve: {e}") from None
    code = 0
    try:  # from here on, whatever ends this (Ctrl-C, SIGTERM, an error) stops the server
        say(f"serving on {srv.url} (POST /recommend, /rank, /recommend_batch, /info; GET "
            f"/readyz, /metrics); log {srv.log}; Ctrl-C stops")  # fmt: skip
        if tag and ":" in tag and (why := bento_differs(paths, tag)):  # NAME: BentoML's latest
            say(f"note: {tag} is {why}; to serve this install's code: `{REBUILD}`, then "
                "restart this server")  # fmt: skip
        code = srv.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    if code:
        raise SystemExit(f"recassets serve: bentoml serve exited ({code}); see {srv.log}")


__all__ = ["serve"]
