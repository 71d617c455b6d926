"""The ``recassets`` command line.

Start-up stays light: heavy modules (Spark, torch, Feast, Dagster) load inside the command
that needs them. Materialization goes through Dagster itself (``python -m assets.launch`` in
a subprocess: the definitions' asset job, executed in that process against the instance under
``RECASSETS_HOME/dagster``, several runs in one process), so every run the CLI makes is a
real Dagster run that shows up in the UI; the library itself never imports Dagster.

The CLI is an edge: it reads its environment (``Paths.from_env``) and hands the library
explicit arguments. The Dagster runs it launches inherit that environment and the home it
resolved; their resources read it through ``EnvVar`` (``resources/__init__.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recassets import cli_args, cli_plan
from recassets.freshness import SETTLE_ENV, check_run_settings
from recassets.instance import write_dagster_yaml
from recassets.paths import LOCATION_ENV, Paths

INGEST_SELECTION = ("lake/raw_events", "lake/users", "lake/items")
# Every materializable asset, upstream first. tests/dagster/test_definitions.py keeps this
# equal to the definitions' materializable keys, so the demo never misses a new asset.
DEMO_SELECTION = (
    *INGEST_SELECTION,
    "lake/user_features", "lake/item_features", "lake/cohort_features",
    "featurestore/feature_store", "lake/training_examples",
    "models/two_tower_model", "models/ranking_model", "models/sequence_ranking_model",
    "models/item_similarity", "models/light_ranker", "models/model_evaluation", "retrieval/item_embeddings", "retrieval/item_index", "serving/recommender_bento",
)  # fmt: skip
# The decision log's table: daily over the days answers were served (its own partitions, not
# the data's days), and not in the demo, which has served nothing when it materializes.
SERVING_LOG = "lake/serving_log"
NOT_IN_DEMO = (SERVING_LOG,)
MODELS = (
    "models/two_tower_model",
    "models/ranking_model",
    "models/sequence_ranking_model",
    "models/item_similarity",
    "models/light_ranker",
    "models/model_evaluation",
)
# The models and what is built from them are not daily partitioned: one run, no partition range.
UNPARTITIONED = (*MODELS, *DEMO_SELECTION[DEMO_SELECTION.index(MODELS[-1]) + 1 :])

# Read by the quality checks' resource (resources/quality.py) in the runs the CLI launches.
VOLUME_BAND_ENV = "RECASSETS_VOLUME_BAND"
MAX_DAYS = 36_525  # `generate --days`: a century of daily partitions is past any real history
MAX_BATCH_K = 10_000  # `recommend --k`: items per user of a batch (a page is k <= 200 online)


def say(msg: str) -> None:
    print(f"[recassets {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def repo_root() -> Path:
    """The folder holding definitions.py: the current one or above, else next to the package."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "definitions.py").is_file() and (folder / "workspace.yaml").is_file():
            return folder
    here = Path(__file__).resolve().parents[1]
    if (here / "definitions.py").is_file():
        return here
    raise SystemExit("recassets: cannot find definitions.py; run from the recassets repo")


def ensure_home(paths: Paths) -> None:
    for folder in (paths.landing, paths.lake, paths.artifacts, paths.lineage, paths.dagster_home):
        if "://" not in folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
    write_dagster_yaml(Path(paths.dagster_home))


def dagster_env(paths: Paths, settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """A launched run's environment: the CLI's own, the home it resolved, and ``settings``."""
    env = dict(os.environ)
    env["RECASSETS_HOME"] = paths.home
    env.update({name: getattr(paths, field) for field, name in LOCATION_ENV.items()})
    env["RECASSETS_CLI_PID"] = str(os.getpid())  # the run stops once we are gone (stop_with_parent)
    env.update(settings or {})
    check_run_settings(env)  # a bad value named here, not in the run's log
    return env


GATE = "model_evaluation_promotion_gate"
# How assets/launch.py reports the end of each run of a plan on its stdout.
RUN_LINE = "recassets-run:"
FAILED_LINE = "recassets-failed:"
NOTE_LINE = "recassets-note:"  # runs left by a killed process, pools held (assets.stale_runs)


def materialize(
    paths: Paths,
    selection: Sequence[str],
    first: str | None,
    last: str | None,
    settings: Mapping[str, str] | None = None,
    log_days: tuple[str, str] | None = None,
) -> None:
    """Materialize ``selection``: the daily assets in one Dagster run over first..last
    (single-run backfill), the models in a second run, what serving builds from the current
    policy (embeddings, index, bento) in a third; the three runs in one process
    (``assets/launch.py``).

    A refused model fails the second run at its blocking gate: that is the gate working, not
    a broken demo. The previous policy (a model, or popularity while none passed) keeps
    serving, so the third run still builds a bento, from that policy. A model that fails to
    train leaves that policy too: the third run goes on, each failed step is said in one line,
    and the command exits 1 at the end. ``settings``: variables for the runs' resources
    (``dagster_env``). ``lake/serving_log``: a run of its own over ``log_days`` (served days)."""
    daily = [k for k in selection if k not in UNPARTITIONED and k != SERVING_LOG]
    models = [k for k in selection if k in MODELS]
    serving = [k for k in selection if k in UNPARTITIONED and k not in MODELS]
    plan = []
    if daily:
        cli_args.within_partitions(paths, first, last)  # a clear refusal, before any run
        plan += cli_plan.inputs_before(paths, daily, first) if first else []  # --first's inputs
        plan.append({"select": daily, "first": first, "last": last})
    if models:
        # keep_going: a model that cannot train (too little data, no positives) leaves the
        # policy as it is, and the serving run builds from that; the command still exits 1
        plan.append({"select": models, "first": None, "last": None, "tolerate": GATE,
                     "keep_going": bool(serving)})  # fmt: skip
    if serving:
        plan.append({"select": serving, "first": None, "last": None})
    if SERVING_LOG in selection:
        if log_days is None:
            raise ValueError(f"{SERVING_LOG} needs its days (log_days)")
        plan.append({"select": [SERVING_LOG], "first": log_days[0], "last": log_days[1]})
    _launch(paths, plan, settings)


class StepsFailed(SystemExit):
    """Steps failed (each said as it came); ``finished``: every run of the plan still ran
    (the models' run failed and the serving run built from the policy that stays)."""

    def __init__(self, message: str, steps: Sequence[str], finished: bool) -> None:
        super().__init__(message)
        self.steps, self.finished = list(steps), finished


# Dagster's own event lines (the log keeps them); the CLI shows the assets' progress lines.
_CHATTER = ("STEP_", "LOADED_", "HANDLED_", "ASSET_", "RUN_", "ENGINE_")


def _launch(
    paths: Paths, plan: Sequence[Mapping[str, Any]], settings: Mapping[str, str] | None = None
) -> None:
    """Run ``plan`` (``assets/launch.py``). Streams the assets' progress lines; the full log
    goes to ``RECASSETS_HOME/logs/``. Raises SystemExit with the log's tail when a run fails."""
    ensure_home(paths)
    logs = Path(paths.home) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # the pid too: two CLI runs started in the same second must not share a log or plan file
    stamp = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
    log_path = logs / f"materialize-{stamp}.log"
    plan_path = logs / f"materialize-{stamp}.plan.json"
    plan_path.write_text(json.dumps(list(plan), indent=2))

    def announce(i: int) -> None:
        entry = plan[i]
        first, last = entry.get("first"), entry.get("last")
        rng = "all data" if first is None else first if first == last else f"{first}...{last}"
        say(f"materializing {', '.join(entry['select'])} for {rng} in one Dagster run "
            f"(log: {log_path})")  # fmt: skip

    announce(0)
    failed: list[str] = []
    ran = -1  # the last plan entry whose run ended
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assets.launch", str(plan_path)],
            cwd=repo_root(),
            env=dagster_env(paths, settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own group: a stop signal reaches it through us alone
        )
        assert proc.stdout is not None
        with cli_args.stopping_with(proc) as stopped:
            for line in proc.stdout:
                log.write(line)
                if line.startswith(FAILED_LINE):
                    _, step, cause = (line.rstrip("\n").split(" ", 2) + ["", ""])[:3]
                    failed.append(step)
                    say(f"  {step} failed: {cause}")
                elif line.startswith(NOTE_LINE):
                    say("  " + line[len(NOTE_LINE) :].strip())
                elif line.startswith(RUN_LINE):
                    _, index, status, run_id = line.split()
                    i = ran = int(index)
                    if status == "REFUSED":
                        say(f"the promotion gate refused the candidate models ({GATE} failed): the "
                            "current policy or the best simple method serves (`recassets evaluate`)")  # fmt: skip
                    elif status == "SUCCESS":
                        say(f"run {run_id} finished")
                    goes_on = i + 1 < len(plan) and not stopped  # stopped: run_plan starts no more
                    if status == "FAILURE" and plan[i].get("keep_going") and goes_on:
                        say(f"run {run_id} failed: serving keeps the current policy")
                    if (status != "FAILURE" or plan[i].get("keep_going")) and goes_on:
                        announce(i + 1)
                elif " - dagster - " in line and any(
                    f" - {level} - " in line for level in ("INFO", "WARNING", "ERROR")
                ):
                    event = line.rsplit(" - ", 1)[-1].strip()
                    if (
                        not event.startswith(_CHATTER)
                        and "Started execution" not in event
                        and "Finished execution" not in event
                    ):
                        say("  " + event)
            code = proc.wait()
    cli_args.said_stopped(stopped, code, log_path)
    if code != 0 and failed:  # each cause was said in one line as it came
        raise StepsFailed(f"recassets: {len(failed)} step(s) failed ({', '.join(failed)}); "
                          f"full log in {log_path}", failed, ran == len(plan) - 1)  # fmt: skip
    if code != 0:
        tail = cli_args.failure_tail(log_path.read_text())
        raise SystemExit(
            f"recassets: the Dagster run failed (exit {code}). Last lines of {log_path}:\n{tail}"
        )
    say(f"full log in {log_path}")


def cmd_generate(args: argparse.Namespace) -> None:
    from recassets.paths import MAX_DAYS_AHEAD
    from recassets.synthetic import SyntheticConfig, generate

    start = dt.date.fromisoformat(args.start)
    # a day past the horizon opens no partition (paths.partition_days): it landed, then
    # `materialize` said "nothing has landed"
    horizon = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=MAX_DAYS_AHEAD)
    if (horizon - start).days < args.days - 1:
        raise SystemExit(
            f"recassets generate: --start {args.start} --days {args.days} ends after "
            f"{horizon} ({MAX_DAYS_AHEAD} days after today, UTC: later days open no daily "
            "partition): start earlier or generate fewer days"
        )
    paths = Paths.from_env()
    config = SyntheticConfig(seed=args.seed, start=start, days=args.days,
                             events_per_day=args.events_per_day, fmt=args.format,
                             **cli_args.world_sizes(args))  # fmt: skip
    say(
        f"generating {config.days} day(s) of ~{config.events_per_day} events from {config.start} "
        f"({config.initial_users:,} users, {config.initial_items:,} items) into {paths.landing}"
    )
    summary = generate(paths, config, progress=lambda m: say("  " + m))
    say(
        f"landed {summary.events} events, {summary.users} users, {summary.items} items in {summary.n_files} files"
    )


def cmd_import_movielens(args: argparse.Namespace) -> None:
    from recassets.movielens import DEMO_MAX_DAYS, import_movielens

    paths = Paths.from_env()
    say(f"importing MovieLens from {args.dir} into {paths.landing}")
    s = import_movielens(args.dir, paths, fmt=args.format, progress=lambda m: say("  " + m),
                         since=args.since, max_days=DEMO_MAX_DAYS if args.demo else None)  # fmt: skip
    for line in s.describe(next_step=not args.demo):
        say(line)


def landed_range(paths: Paths) -> tuple[str, str]:
    return cli_args.landed_range(paths, say)


def serving_log_range(paths: Paths) -> tuple[str, str]:
    """The first and last day the decision log landed files for."""
    days = paths.landed_days("serving_log")
    if not days:
        raise SystemExit(
            f"recassets: no decision log in {paths.landing}/serving_log; serve a bento and "
            "send it requests first (`recassets serve`)"
        )
    return days[0].isoformat(), days[-1].isoformat()


# The models train on every day of training_examples but the last, which their evaluation and
# the gate hold out: a history of one day leaves nothing to train on.
MIN_MODEL_DAYS = 2
# A history longer than this is said to be slow before the demo starts: the cost is per day
# (partition), not per event. On two cores, about two minutes whatever the span plus 0.45 s a
# day: a 14-month history of 3,000 ratings took 7 minutes, a 3-year one of 1,000 ratings 9.
LONG_HISTORY_DAYS = 730
DEMO_FIXED_S, DEMO_S_PER_DAY = 120, 0.45


def trainable(paths: Paths, selection: Sequence[str], *, explicit: bool) -> Sequence[str]:
    """``selection``, or without the models when fewer than ``MIN_MODEL_DAYS`` days of events
    have landed: said, and popularity serves what the rest builds (the bento). Asked for by
    name (``explicit``), they are refused naming why, before anything starts (they failed a
    minute into the run with a traceback)."""
    days = paths.landed_days("events")
    wanted = [k for k in selection if k in MODELS]
    if not wanted or len(days) >= MIN_MODEL_DAYS:
        return selection
    why = (
        f"{len(days)} day of events landed ({', '.join(d.isoformat() for d in days) or 'none'}): "
        f"the models need at least {MIN_MODEL_DAYS} (they train on the days before the last, "
        "which evaluates and gates them)"
    )
    if explicit:
        raise SystemExit(f"recassets materialize --select {', '.join(wanted)}: {why}")
    say(f"{why}; materializing everything else, and popularity serves")
    return [k for k in selection if k not in MODELS]


def cmd_materialize(args: argparse.Namespace) -> None:
    paths = Paths.from_env()
    selection = cli_args.selected(args.select, DEMO_SELECTION, NOT_IN_DEMO)
    daily = [k for k in selection if k not in UNPARTITIONED and k != SERVING_LOG]
    cli_args.dated_selection(args.first, args.last, selection, daily, SERVING_LOG)
    first = last = log_days = None
    if SERVING_LOG in selection:
        log_first, log_last = serving_log_range(paths)
        log_days = (args.first or log_first, args.last or log_last)
        if log_days[0] > log_days[1]:
            raise SystemExit(f"recassets materialize: {SERVING_LOG} from {log_days[0]} to "
                             f"{log_days[1]}: the first day is after the last")  # fmt: skip
    if any(k != SERVING_LOG for k in selection):
        first, last = cli_args.window_range(paths, *landed_range(paths), args.first, args.last)
        selection = trainable(paths, selection, explicit=args.select is not None)
    materialize(paths, selection, args.first or first, args.last or last, log_days=log_days)


def cmd_status(_args: argparse.Namespace | None = None) -> None:
    """What exists under the home (``cli_args.status_lines``); exit 1 naming each table that
    cannot be read, after the rest is said."""
    lines, unread = cli_args.status_lines(Paths.from_env())
    for line in lines:
        say(line)
    if unread:
        raise SystemExit(
            f"recassets status: {len(unread)} table(s) cannot be read: {', '.join(unread)}"
        )


def cmd_init(_args: argparse.Namespace) -> None:
    paths = Paths.from_env()
    ensure_home(paths)
    say(f"RECASSETS_HOME {paths.home}; Dagster instance {paths.dagster_home}/dagster.yaml")


def cmd_lineage(args: argparse.Namespace) -> None:
    """``recassets lineage``: see ``recassets.lineage.command``."""
    from recassets.lineage.command import run

    run(args, Paths.from_env())


def cmd_audit(args: argparse.Namespace) -> None:
    """``recassets audit``: see ``recassets.lineage.audit``."""
    from recassets.lineage.audit import run

    if args.out != "-":
        cli_args.out_file("audit", args.out)
    run(args, Paths.from_env())


def cmd_reproduce(args: argparse.Namespace) -> None:
    """Retrain MODEL (two_tower/0003) from the Delta versions it records, with its config and
    seed, and compare with the recorded checkpoint (``recassets.training.reproduce``); exit 1
    on a difference, listing it."""
    from recassets.training.reproduce import model_file, reproduce

    try:
        path = model_file(Paths.from_env(), args.model)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"recassets reproduce: {e}") from None
    say(f"reproducing {args.model} ({path}) from its recorded Delta versions ...")
    result = reproduce(path)
    print(result.describe())
    if not result.identical:
        raise SystemExit(1)


def cmd_recommend(args: argparse.Namespace) -> None:
    from recassets.training.recommend import cli_recommend

    cli_recommend(args.users, args.k, args.out)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from recassets.training.recommend import cli_evaluate

    cli_evaluate(k=args.k)


def cmd_serve(args: argparse.Namespace) -> None:
    """Serve a bento in the foreground until interrupted (``recassets.cli_serve``)."""
    from recassets.cli_serve import serve

    serve(args.tag, args.port, say)


def cmd_demo(args: argparse.Namespace) -> None:
    paths = Paths.from_env()
    ensure_home(paths)
    started = time.time()
    settings = {}
    if args.movielens:
        cli_args.no_synthetic_options(args, vars(build_parser().parse_args(["demo"])))
        cmd_import_movielens(argparse.Namespace(dir=args.movielens, format="jsonl", since=None,
                                                demo=True))  # fmt: skip
        if not os.environ.get(VOLUME_BAND_ENV, "").strip():  # unset or blank: the default
            # Historical ratings come in bursts (and the last day is partial): a +-50 % band
            # around the trailing mean would block them. The other expectations still hold.
            settings[VOLUME_BAND_ENV] = "off"
            say(f"MovieLens: raw_events volume-band expectation off ({VOLUME_BAND_ENV}=off)")
    else:
        cmd_generate(
            argparse.Namespace(
                seed=args.seed,
                start=args.start,
                days=args.days,
                events_per_day=args.events_per_day,
                users=args.users,
                items=args.items,
                format="jsonl",
            )
        )
    # The demo wrote every landing file itself and finished before its run starts: nothing is
    # still being written, so its run need not wait for the newest files to settle.
    settings.setdefault(SETTLE_ENV, os.environ.get(SETTLE_ENV, "").strip() or "0")
    first, last = landed_range(paths)
    span = (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1
    if span > LONG_HISTORY_DAYS:  # the cost is per day, not per event: say it before it starts
        say(f"the history spans {span} days ({first}..{last}), each a partition of every daily "
            f"asset: expect about {round((DEMO_FIXED_S + DEMO_S_PER_DAY * span) / 60)} minutes "
            "or more on two cores however few its "
            "events; to start later, stop here and `recassets materialize --first YYYY-MM-DD` "
            "(every day stays landed)")  # fmt: skip
    failed = None
    try:
        materialize(paths, trainable(paths, DEMO_SELECTION, explicit=False), first, last, settings)
    except StepsFailed as e:
        if not e.finished:
            raise
        failed = e  # a model could not train: serve the policy that stays, then say so
    from recassets.bento.server import sample_recommendation

    sample_recommendation(paths, say)
    if failed is not None:
        raise failed
    say(f"demo finished in {time.time() - started:.0f} s. What exists now:")
    cmd_status()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recassets", description=cli_args.DESCRIPTION)
    # each option's default in its help (a default said nowhere was a guess)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=cli_args.Parser)

    p = sub.add_parser("demo", help="generate or import data, materialize every asset, summarize")
    p.add_argument("--movielens", metavar="DIR", type=cli_args.folder,
                   help="import a MovieLens release from DIR (or its .zip) instead")  # fmt: skip
    cli_args.synthetic_args(p, days=14, max_days=MAX_DAYS)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("generate", help="land synthetic events, users and items")
    cli_args.synthetic_args(p, days=14, max_days=MAX_DAYS)
    p.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl", help="file format")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("import-movielens", help="land a MovieLens release, ml-100k to ml-32m")
    p.add_argument("dir", type=cli_args.folder, help="the release's folder or .zip")
    p.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl", help="file format")
    p.add_argument("--since", metavar="DAY", type=cli_args.day, help="land DAY's ratings and after")
    p.set_defaults(func=cmd_import_movielens, demo=False)

    p = sub.add_parser("materialize", help="materialize assets over the landed days in one run")
    p.add_argument(
        "--select",
        help=f"comma-separated asset keys (default: every asset but {', '.join(NOT_IN_DEMO)})",
    )
    p.add_argument("--first", type=cli_args.day, help="first day (default: first landed)")
    p.add_argument("--last", type=cli_args.day, help="last day (default: last landed)")
    p.set_defaults(func=cmd_materialize)

    p = sub.add_parser("recommend", help="batch top-K: the pages the newest bento serves (no HTTP)")
    p.add_argument("--users", required=True, type=cli_args.nonempty("--users"),
                   help="a file with one user id per line")  # fmt: skip
    p.add_argument("--k", type=cli_args.at_most(MAX_BATCH_K), default=100, help="items a user")
    p.add_argument("--out", help="recs.parquet or recs.csv (default: JSON lines on stdout)")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("evaluate", help="print the evaluation of the current model")
    p.add_argument("--k", type=cli_args.positive, default=50, help="the K of Recall@K")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("serve", help="bentoml serve the newest (or a given) bento on 127.0.0.1")
    p.add_argument("--tag", type=cli_args.nonempty("--tag"),
                   help="bento tag (default: the newest recassets_recommender)")  # fmt: skip
    p.add_argument("--port", type=cli_args.port, default=3001, help="on 127.0.0.1")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("init", help="create RECASSETS_HOME and its Dagster instance (dagster.yaml)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("status", help="what exists under RECASSETS_HOME")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "lineage",
        help="what a bento, model version, table partition or served request grew from, down "
        "to landing files",
    )
    p.add_argument(
        "target",
        help="a bento tag or latest, two_tower/0003, TABLE@VERSION, TABLE, or a request id",
    )
    p.add_argument("day", nargs="?", help="YYYY-MM-DD, after TABLE")
    p.add_argument("--json", action="store_true", help="OpenLineage run events, one per line")
    p.add_argument(
        "--verify", action="store_true",
        help="re-hash every file whose sha256 was recorded; exit 1 naming any that differ",
    )  # fmt: skip
    p.add_argument("--strict", action="store_true", help="with --verify: fail on a bento whose "
                   "code was never recorded (built before 2026-12-07) too")  # fmt: skip
    p.add_argument(
        "--manifest", action="store_true",
        help="TABLE DAY (raw_events, users, items, serving_log): print the ingest manifest",
    )  # fmt: skip
    p.set_defaults(func=cmd_lineage, parser=p)

    p = sub.add_parser("audit", help="one self-contained HTML report on a bento, model or request")
    p.add_argument("target", help="as for lineage: a bento tag or latest, two_tower/0003, ...")
    p.add_argument("day", nargs="?", help="YYYY-MM-DD, after TABLE")
    p.add_argument("--out", required=True, help="the HTML file to write (-: standard output)")
    p.set_defaults(func=cmd_audit, parser=p)

    p = sub.add_parser("reproduce", help="retrain a model version from its recorded data; compare")
    p.add_argument("model", help="a model version: two_tower/0003 or ranking/0002")
    p.set_defaults(func=cmd_reproduce)
    return parser


DEBUG_ENV = "RECASSETS_DEBUG"
SAID = (ValueError, OSError, OverflowError, MemoryError)  # said in one line (and Delta's)


def main(argv: Sequence[str] | None = None) -> None:
    """Run a command. A ``SAID`` error (a bad input, a file not read or written, a location no
    folder) or a ``DeltaError`` (a damaged table log) ends it in one line, exit 1."""
    for name in ("stdout", "stderr"):  # started with the descriptor closed (`cmd >&-`):
        if getattr(sys, name) is None:  # Python leaves None, and the first print failed
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - for the process' life
    args = build_parser().parse_args(argv)
    cli_args.refuse_file_locations()
    try:
        args.func(args)
        sys.stdout.flush()  # a reader gone is found here, not in the interpreter's last flush
    except KeyboardInterrupt:  # Ctrl-C in a command that does not pass it on (generate)
        print(f"recassets {args.command}: interrupted (what was written whole stays; run it "
              "again to finish)", file=sys.stderr)  # fmt: skip
        raise SystemExit(130) from None  # 128 + SIGINT, as a shell reports it
    except Exception as e:  # noqa: BLE001 - the kinds above; any other is a bug: its traceback
        cli_args.end_if_reader_left(e)
        delta = any(c.__name__ == "DeltaError" for c in type(e).__mro__)  # a damaged log
        debug = os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")
        if debug or not (delta or isinstance(e, SAID)):
            raise
        raise SystemExit(f"recassets {args.command}: {type(e).__name__}: {cli_args.plain(e)} "
                         f"({DEBUG_ENV}=1 shows where)") from None  # fmt: skip
    finally:
        cli_args.mute_if_reader_left()  # a command's own SystemExit (exit 1) included


if __name__ == "__main__":
    main()
