"""Starting and stopping ``bentoml serve``, for the CLI, the demo, tests and benchmarks. A real
server process over HTTP, never the service class called in-process. The bind address is
always passed explicitly: ``host`` (default ``127.0.0.1``, the loopback only; a deployment
that must be reached from outside says so, and sets ``RECASSETS_SERVING_TOKEN``)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recassets.bento import bundle as B
from recassets.paths import Paths
from recassets.process import stop_process_group


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DEFAULT_HOST = "127.0.0.1"


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    token: str | None = None  # sent as a bearer token by post/get when set

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def post(self, route: str, payload: Any, timeout: float = 30.0) -> tuple[int, Any]:
        return post(self.url + route, payload, timeout, self.headers)

    def get(self, route: str, timeout: float = 10.0) -> tuple[int, str]:
        return get(self.url + route, timeout, self.headers)

    def stop(self) -> None:
        """SIGTERM to the server and its workers (one process group), SIGKILL after 20 s."""
        stop_process_group(self.process, timeout_s=20)


def post(
    url: str, payload: Any, timeout: float = 30.0, headers: Mapping[str, str] | None = None
) -> tuple[int, Any]:
    """(status, parsed JSON or text) of a JSON POST; 4xx/5xx are returned, not raised."""
    status, body = post_bytes(
        url,
        json.dumps(payload).encode(),
        {"Content-Type": "application/json", **(headers or {})},
        timeout,
    )
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def post_bytes(
    url: str,
    body: bytes | Iterable[bytes],
    headers: Mapping[str, str],
    timeout: float = 30.0,
) -> tuple[int, bytes]:
    """(status, body) of a POST of ``body`` (bytes, or chunks sent with chunked encoding).

    A server may answer before it has read the whole body (a 413 for a body over its limit)
    and close the connection; the rest of the send then fails with a broken pipe or a reset.
    That is an answer, not a failure: the response already sent is read and returned, as curl
    does (urllib raised the send error instead, and a test of the 413 failed now and then)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        chunked = not isinstance(body, bytes)
        try:
            conn.request("POST", parts.path or "/", body, dict(headers), encode_chunked=chunked)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered early: the response, if any, is read below
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def get(
    url: str, timeout: float = 10.0, headers: Mapping[str, str] | None = None
) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=dict(headers or {})), timeout=timeout
        ) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return 0, str(e)


def start(
    paths: Paths,
    target: str | None = None,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    log: str | Path | None = None,
    ready_timeout_s: float = 180.0,
    cwd: str | Path | None = None,
    host: str = DEFAULT_HOST,
) -> Server:
    """``bentoml serve <target>`` (a bento tag, default the newest; or a ``module:Class`` with
    ``cwd``) on ``host`` (127.0.0.1), waiting until ``/readyz`` answers 200. Raises with the
    server's log tail when it exits or does not get ready in time. The returned server sends
    the token of ``RECASSETS_SERVING_TOKEN`` in ``env`` (else the environment), if any."""
    target = target or B.latest_bento(paths)
    if target is None:
        raise FileNotFoundError(
            f"no bento in {B.bentoml_home(paths)}: materialize serving/recommender_bento first"
        )
    if port and not port_is_free(host, port):
        # checked first: the new server would die on bind while the one already there
        # answered /readyz for it, and its log (truncated below) is the other server's
        raise RuntimeError(f"port {port} on {host} is in use: stop what serves there, or pick "
                           "another port")  # fmt: skip
    port = port or free_port()
    log_path = Path(log) if log else Path(paths.home) / "logs" / f"bentoml-serve-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        "BENTOML_HOME": B.bentoml_home(paths),
        "BENTOML_DO_NOT_TRACK": "True",
        "RECASSETS_HOME": paths.home,
        **(env or {}),
    }
    if cwd is None:  # the recommender (not a benchmark's service): its settings, first
        from recassets.bento import preflight

        # the bundle's own campaigns file was checked when the bento was built (and is again
        # at the worker's start); RECASSETS_ADS_CAMPAIGNS, naming another, is checked here
        preflight.check(full_env)
    from recassets.bento.guard import token_from_env

    token = token_from_env(full_env)  # before the launch: a refusal leaves no server behind
    if cwd is None:  # settings first, then the tag (BentoML's own miss: `bentoml pull`, a module)
        B.check_tag(paths, target)  # and before any path is made of it
        bundle = B.bento_folder(paths, target) / "src" / "bundle"
        if (bundle / "manifest.json").exists():  # a tag of this store: its files, checked now
            from recassets.funnel.bundle import Bundle

            # damaged, a worker would fail at start and be restarted by BentoML's arbiter,
            # which itself stays up: this wait would end only at its timeout, naming none
            Bundle.load(bundle, code=bundle.parent)  # and the bento's code, as the worker
    handle = open(log_path, "wb")  # noqa: SIM115 - handed to the child, closed here after
    proc = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", target, "--host", host, "--port", str(port)],
        stdout=handle, stderr=subprocess.STDOUT, env=full_env, cwd=cwd, start_new_session=True,
    )  # fmt: skip
    handle.close()  # the child holds its own descriptor
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    server = Server(proc, f"http://{url_host}:{port}", log_path, token)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bentoml serve exited ({proc.returncode}):\n{_tail(log_path)}")
        status, _ = get(server.url + "/readyz", timeout=2)
        if status == 200 and proc.poll() is None:  # ready, and it is ours that answered
            return server
        time.sleep(0.5)
    server.stop()
    raise TimeoutError(f"bentoml serve not ready in {ready_timeout_s:.0f} s:\n{_tail(log_path)}")


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (a bind with SO_REUSEADDR, as
    servers bind: a port left in TIME_WAIT is free, one with a listener is not)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def serving(
    paths: Paths, target: str | None = None, **kwargs: Any
) -> Generator[Server, None, None]:
    server = start(paths, target, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except FileNotFoundError:
        return "(no log)"


def sample_recommendation(paths: Paths, say: Callable[[str], None], k: int = 10) -> None:
    """The demo's last step: start the newest bento with ``bentoml serve`` on 127.0.0.1, ask
    ``POST /recommend`` for one user over HTTP, print the answer (and its notes: why a page
    is short or empty), stop the server."""
    tag = B.latest_bento(paths)
    if tag is None:
        say("no bento was built (see the run log): nothing to serve")
        return
    user = _sample_user(paths)
    say(f"serving {tag} with bentoml serve on 127.0.0.1 ...")
    with serving(paths, tag) as srv:
        status, body = srv.post("/recommend", {"user_id": user, "k": k})
        if status != 200:
            raise SystemExit(f"recassets: POST /recommend answered {status}: {body}")
        items = body["items"]
        say(f"POST {srv.url}/recommend {{user_id: {user}, k: {k}}} -> policy {body['policy']}, "
            f"features of {body['features_day']}: {len(items)} item(s)")  # fmt: skip
        for rank, item in enumerate(items, start=1):
            say(f"  {rank:2d}. item {item['item_id']}  score {item['score']:.3f}  "
                f"({' > '.join(item['stages'])}"
                f"{'; from ' + ', '.join(item['sources']) if item.get('sources') else ''})")  # fmt: skip
        for note in body.get("notes") or []:
            say(f"  note: {note}")
        if not items:
            say("  (nothing left to recommend to this user: every item of the catalog is one "
                "they engaged with, and seen items are excluded)")  # fmt: skip


def _sample_user(paths: Paths) -> int:
    """A user the online store knows: of the served day's user features, the lowest id among
    those with a history no longer than the median (the page shows the model at work, and is
    not empty on a small catalog that the first user has seen whole)."""
    import datetime as dt

    import pyarrow.compute as pc

    from recassets.featurestore.store import served_day
    from recassets.lake import open_delta

    day = served_day(paths)
    ds = open_delta(paths.table("user_features")).to_pyarrow_dataset()
    flt = pc.field("dt") == dt.date.fromisoformat(day) if day else None
    cols = [c for c in ("user_id", "seen_item_ids") if c in ds.schema.names]
    rows = ds.to_table(columns=cols, filter=flt)
    if rows.num_rows == 0:
        return 0
    ids = rows["user_id"].to_pylist()
    if "seen_item_ids" not in cols:
        return int(min(ids))
    seen = pc.list_value_length(rows["seen_item_ids"]).fill_null(0).to_pylist()
    return _modest_history(ids, seen)


def _modest_history(ids: list[int], seen: list[int]) -> int:
    """The lowest id among the users with a history no longer than the median of those with
    one; the lowest id when nobody has one. The median leaves out the users without a history:
    a MovieLens home lists every user of ``u.user``, most of them without a rating (5,101 of
    6,041 on a reviewed slice), and the median of all was 0, so the sample was user 1, with
    no history, showing no model at work."""
    some = sorted(n for n in seen if n > 0)
    if not some:
        return int(min(ids))
    median = some[len(some) // 2]
    return int(min(u for u, n in zip(ids, seen, strict=True) if 0 < n <= median))


__all__ = ["Server", "free_port", "get", "post", "sample_recommendation", "serving", "start"]
