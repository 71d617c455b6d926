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


def test_a_tag_the_store_does_not_hold_is_refused_naming_what_it_holds(tmp_path: Path):
    """BentoML's own miss told of `bentoml pull` and of a module it could not import."""
    from recassets.bento import bundle as B

    paths = Paths.at(tmp_path / "home")
    held = Path(B.bentoml_home(paths)) / "bentos" / "recassets_recommender" / "20261206t072059-a"
    held.mkdir(parents=True)
    (held / "bento.yaml").write_text("service: x\n")
    B.check_tag(paths, "recassets_recommender:20261206t072059-a")  # held: no error
    with pytest.raises(FileNotFoundError) as missing:
        server.start(paths, "recassets_recommender:nope")
    said = str(missing.value)
    assert said.startswith("no bento recassets_recommender:nope in the store ")
    assert "(it holds recassets_recommender:20261206t072059-a)" in said and "bentoml import" in said
    half = held.parent / "20261206t080000-b"  # a build killed half way: no bento.yaml
    half.mkdir()
    with pytest.raises(FileNotFoundError, match="no bento recassets_recommender:20261206t080000-b"):
        B.check_tag(paths, "recassets_recommender:20261206t080000-b")
    for bad in ("bad tag!!", "Recassets:X", "../x", "recassets_recommender:..", "x:../../tmp"):
        with pytest.raises(ValueError, match="is not a bento tag"):
            B.check_tag(paths, bad)
