"""``recassets serve`` on a port another server holds: the new server died on bind while the
old one answered ``/readyz`` for it, so the CLI said "serving" and exited 0 (and truncated the
old server's log). The port is checked first now."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from recassets.bento import server
from recassets.paths import Paths


def test_a_port_with_a_listener_is_not_free_and_a_closed_one_is():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not server.port_is_free("127.0.0.1", port)
    assert server.port_is_free("127.0.0.1", port)


def test_start_refuses_a_busy_port_before_launching_or_touching_its_log(tmp_path: Path):
    paths = Paths.at(tmp_path / "home")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        log = Path(paths.home) / "logs" / f"bentoml-serve-{port}.log"
        log.parent.mkdir(parents=True)
        log.write_text("the other server's log\n")
        with pytest.raises(RuntimeError, match=f"port {port} on 127.0.0.1 is in use"):
            server.start(paths, "recassets_recommender:any", port=port)
        assert log.read_text() == "the other server's log\n"
