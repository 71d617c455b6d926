"""``recassets serve``: a bento in the foreground until interrupted (``recassets.cli`` parses
the command line and passes its printer)."""

from __future__ import annotations

from collections.abc import Callable


def serve(tag: str | None, port: int | None, say: Callable[[str], None]) -> None:
    """Serve ``tag`` (default the newest bento) on ``port``, recorded for ``recassets status``
    and refused at once without an item catalogue (``server.start``); says when the bento
    carries other code than this install's (``recassets.bento.code``: after an upgrade the
    stored bentos keep the code they were built with); Ctrl-C or SIGTERM stops it."""
    import signal

    from recassets.bento import bundle as B
    from recassets.bento import server
    from recassets.bento.code import REBUILD, bento_differs
    from recassets.paths import Paths

    paths = Paths.from_env()
    tag = tag or B.latest_bento(paths)
    try:
        srv = server.start(paths, tag, port=port, record=True,
                           catalogue_wait_s=server.SERVE_CATALOGUE_WAIT_S)  # fmt: skip
    except (FileNotFoundError, RuntimeError, TimeoutError, ValueError) as e:
        raise SystemExit(f"recassets serve: {e}") from None
    say(f"serving on {srv.url} (POST /recommend, /rank, /recommend_batch, /info; GET /readyz, "
        f"/metrics); log {srv.log}; Ctrl-C stops")  # fmt: skip
    if tag and ":" in tag and (why := bento_differs(paths, tag)):  # NAME alone: BentoML's latest
        say(f"note: {tag} is {why}; to serve this install's code: `{REBUILD}`, then "
            "restart this server")  # fmt: skip

    def stop_on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (a supervisor, `kill`) stops the server too

    signal.signal(signal.SIGTERM, stop_on_term)
    code = 0
    try:
        code = srv.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    if code:
        raise SystemExit(f"recassets serve: bentoml serve exited ({code}); see {srv.log}")


__all__ = ["serve"]
