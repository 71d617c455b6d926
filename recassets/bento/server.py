"""Starting and stopping ``bentoml serve``, for the CLI, the demo, tests and benchmarks. A real
server process over HTTP, never the service class called in-process. The bind address is
always passed explicitly: ``host`` (default ``127.0.0.1``, the loopback only; a deployment
that must be reached from outside says so, and sets ``RECASSETS_SERVING_TOKEN``).

Which servers of a home are running (``recassets status``) is known from records, not logs: a
server started with ``record=True`` (``recassets serve``, the long-running one) writes
``<home>/run/serve-<port>@<hostname>.json`` (machine, pid, port, URL, bento) once it is
ready, and its ``stop`` removes it. Every start leaves a log (the demo's and the benchmarks'
short-lived servers on free ports too), so the newest log named a server that was stopped, or
a sample that no ``recassets serve`` ever ran. A record is believed only while its process
group lives and its port accepts a connection (``running``); one whose process is gone (a
crash, a reboot) is deleted when read. Only on the machine that wrote it: a home shared by
machines (NFS, a Kubernetes volume) lists the others' records unchecked (``elsewhere``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recassets.bento import bundle as B
from recassets.paths import Paths
from recassets.process import group_alive, stop_process_group


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
    record: Path | None = None  # its record for ``recassets status`` (``start(record=True)``)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def post(self, route: str, payload: Any, timeout: float = 30.0) -> tuple[int, Any]:
        return post(self.url + route, payload, timeout, self.headers)

    def get(self, route: str, timeout: float = 10.0) -> tuple[int, str]:
        return get(self.url + route, timeout, self.headers)

    def stop(self) -> None:
        """SIGTERM to the server and its workers (one process group), SIGKILL after 20 s; then
        its record, if any, is removed (the server no longer runs)."""
        stop_process_group(self.process, timeout_s=20)
        if self.record is not None:
            _drop_record(self.record, self.process.pid)


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
    record: bool = False,
    catalogue_wait_s: float | None = None,
) -> Server:
    """``bentoml serve <target>`` (a bento tag, default the newest; or a ``module:Class`` with
    ``cwd``) on ``host`` (127.0.0.1), waiting until ``/readyz`` answers 200. Raises with the
    server's log tail when it exits or does not get ready in time. The returned server sends
    the token of ``RECASSETS_SERVING_TOKEN`` in ``env`` (else the environment), if any.

    ``record``: leave a record of the ready server for ``recassets status`` (module docstring),
    removed by its ``stop``; for ``recassets serve`` only, not for a caller's own sample.

    ``catalogue_wait_s``: None waits for the item catalogue as a replica does (the service is
    up but not ready, a 503, until its online store answers; the demo, tests and benchmarks
    need a ready server). A number: once the service has said for that long that it has no
    item catalogue, the server is stopped and ``NoCatalogueError`` says why, quoting the
    store's error from the log. Nothing in a foreground ``recassets serve`` brings a missing
    ``online.db`` or a wrong Redis URL back, so it waited its whole timeout (180 s) and said
    only "not ready". The few seconds of grace are for a store busy for a moment (the probe
    itself loads the catalogue when the store answers)."""
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
    try:
        _wait_ready(server, ready_timeout_s, catalogue_wait_s)
        if record:
            server.record = _write_record(paths, server, target, host, port)
    except BaseException:
        # whatever ends the start (not ready, Ctrl-C or SIGTERM in the wait, a record that
        # cannot be written) stops the server: it leads its own session, so nothing else
        # would, and it went on serving with no `recassets serve` and no record naming it
        server.stop()
        raise
    return server


def _wait_ready(server: Server, ready_timeout_s: float, catalogue_wait_s: float | None) -> None:
    """Return once ``/readyz`` answers 200; raise when the server exits, says for
    ``catalogue_wait_s`` that it has no item catalogue, or is not ready in time (``start``
    stops it)."""
    proc, log_path = server.process, server.log
    deadline = time.monotonic() + ready_timeout_s
    without_since: float | None = None  # when the service first said it has no catalogue
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bentoml serve exited ({proc.returncode}):\n{_tail(log_path)}")
        status, body = get(server.url + "/readyz", timeout=2)
        if status == 200 and proc.poll() is None:  # ready, and it is ours that answered
            return
        if catalogue_wait_s is not None and no_catalogue(status, body):
            now = time.monotonic()
            without_since = now if without_since is None else without_since
            if now - without_since >= catalogue_wait_s:
                raise NoCatalogueError(_no_catalogue_message(log_path))
        else:
            without_since = None
        time.sleep(0.5)
    raise TimeoutError(f"bentoml serve not ready in {ready_timeout_s:.0f} s:\n{_tail(log_path)}")


# What ``recassets serve`` gives a service that says it has no item catalogue before refusing:
# the probe every 0.5 s itself loads the catalogue once the store answers (the reader looks
# for it at most once a second), so 10 s is many tries for a store busy for a moment, and
# not the 180 s a missing ``online.db`` or a wrong Redis URL never ends.
SERVE_CATALOGUE_WAIT_S = 10.0


class NoCatalogueError(RuntimeError):
    """The server came up without an item catalogue (its online store is missing, empty or
    unreachable) and the caller would not wait for one (``start(catalogue_wait_s=...)``)."""


# The start of the detail of the service's 503 on /readyz while it holds no item catalogue
# (``serving/service.py`` NO_CATALOG, in the edge's JSON: ``recassets.bento.guard``); serving/
# imports recassets, never the reverse, so the phrase is repeated here and a test keeps the
# two equal.
NO_CATALOGUE = "no item catalogue loaded"
# The service logs the whole note (the store's path or URL and its error) at WARNING when it
# changes, the trace ids after it: ``degraded: no item catalogue loaded (...): <why> (trace=...``
_NOTE = re.compile(r"degraded: (" + NO_CATALOGUE + r".*?)(?: \(trace=[^()]*\))?$", re.MULTILINE)


def no_catalogue(status: int, body: str) -> bool:
    """Whether a ``/readyz`` answer is the service saying it is up without an item catalogue
    (a 503 ``{"status": "unavailable", "detail": "no item catalogue loaded ..."}``), not
    BentoML's plain 503 of a service still starting."""
    if status != 503:
        return False
    try:
        said = json.loads(body)
    except ValueError:
        return False
    return (isinstance(said, dict) and said.get("status") == "unavailable"
            and str(said.get("detail", "")).startswith(NO_CATALOGUE))  # fmt: skip


def _no_catalogue_message(log: Path) -> str:
    """The refusal: the store's error as the service logged it (the open probe says only a
    public phrase), and what brings the store back."""
    notes = _NOTE.findall(_tail(log, 20_000))
    why = notes[-1] if notes else f"{NO_CATALOGUE} (the reason is in the log)"
    return (f"bentoml serve is up but not ready: {why}. A replica would wait for its online "
            "store; nothing here brings it back, so the server was stopped. Bring the store "
            "back (the embedded SQLite one: `recassets materialize --select "
            "featurestore/feature_store`; Redis: RECASSETS_REDIS_URL right, Redis answering), "
            f"then start again; log {log}")  # fmt: skip


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


def records_dir(paths: Paths) -> Path:
    """Where the records of the running ``recassets serve`` servers of a home are."""
    return Path(paths.home) / "run"


def _record_file(port: int) -> str:
    """``serve-<port>@<hostname>.json``: one file per port and machine. A home may be shared by
    machines (NFS, a Kubernetes volume), and replicas listen on the same port: one file per
    port let each replace the other's record."""
    machine = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "unnamed"
    return f"serve-{port}@{machine}.json"


def _write_record(paths: Paths, server: Server, target: str, host: str, port: int) -> Path:
    """Record a ready server (one file per port of this machine: a port has one listener, and
    a stale record of the same port is replaced). Written whole, then renamed: a reader sees
    all or none. ``hostname`` says which machine's process and port the record names."""
    where = records_dir(paths) / _record_file(port)
    where.parent.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    record = {"pid": server.process.pid, "hostname": socket.gethostname(), "host": host,
              "port": port, "url": server.url, "tag": target, "log": str(server.log),
              "started_at": started}  # fmt: skip
    part = where.with_name(f".{where.name}.{os.getpid()}")
    part.write_text(json.dumps(record) + "\n")
    os.replace(part, where)
    return where


def _drop_record(where: Path, pid: int) -> None:
    """Remove ``where`` if it still records ``pid`` (not a later server's record of the port)."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(where.read_text()).get("pid") == pid:
            where.unlink()


def _records(paths: Paths) -> Iterator[tuple[Path, dict[str, Any], bool]]:
    """(file, record, whether it is this machine's) of each record that parses. A record
    written before records named their machine is taken for this machine's."""
    here = socket.gethostname()
    for where in sorted(records_dir(paths).glob("serve-*.json")):
        try:
            record = json.loads(where.read_text())
            record["pid"], record["port"] = int(record["pid"]), int(record["port"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        yield where, record, str(record.get("hostname") or here) == here


def running(paths: Paths) -> list[dict[str, Any]]:
    """The records of this machine's ``recassets serve`` servers of this home that run now,
    by port: those whose process group lives (``bentoml serve`` leads its own) and whose port
    accepts a connection (0.3 s), both: a pid alone may have been reused after a reboot. A
    record whose process is gone is deleted; one that does not parse is ignored. Another
    machine's records are neither judged nor deleted (``elsewhere``): its pids are not this
    machine's, and a shared home lost the live records of the others to each status."""
    found = []
    for where, record, here in _records(paths):
        if not here:
            continue
        pid, port = int(record["pid"]), int(record["port"])
        host = str(record.get("host") or DEFAULT_HOST)
        if not group_alive(pid):
            with contextlib.suppress(OSError):
                where.unlink()
            continue
        if _answers("127.0.0.1" if host in ("0.0.0.0", "::") else host, port):
            found.append(record)
    return sorted(found, key=lambda r: int(r["port"]))


def elsewhere(paths: Paths) -> list[dict[str, Any]]:
    """The records of this home's servers on other machines, as they are: not checked (their
    process and port are the other machine's), by machine and port. A record of a machine
    gone stays until that machine's ``running`` or its next server of the port replaces it, or
    it is deleted by hand."""
    found = [record for _where, record, here in _records(paths) if not here]
    return sorted(found, key=lambda r: (str(r["hostname"]), int(r["port"])))


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


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


__all__ = [
    "NO_CATALOGUE",
    "SERVE_CATALOGUE_WAIT_S",
    "NoCatalogueError",
    "Server",
    "elsewhere",
    "free_port",
    "get",
    "no_catalogue",
    "post",
    "records_dir",
    "running",
    "sample_recommendation",
    "serving",
    "start",
]
