"""The CLI refuses bad arguments before any work, naming them: a negative ``--k`` was a
slice (every item but the last), a typo in ``--select`` a failed Dagster run to read the end
of, an empty ``--select`` (an unset shell variable) every asset, a users file with a bad line
a traceback."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from recassets import cli, cli_args
from recassets.training.recommend import cli_recommend


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["recommend", "--users", "u.txt", "--k", "-1"], "expected 1 or more, got -1"),
        (["recommend", "--users", "u.txt", "--k", "0"], "expected 1 or more, got 0"),
        (["evaluate", "--k", "0"], "expected 1 or more, got 0"),
        (["serve", "--port", "99999"], "a TCP port is 1..65535, got 99999"),
        (["generate", "--days", "0"], "expected 1 or more, got 0"),
        (["generate", "--start", "2026-13-45"], "expected a date YYYY-MM-DD, got '2026-13-45'"),
        (["materialize", "--first", "yesterday"], "expected a date YYYY-MM-DD, got 'yesterday'"),
        # Dagster's daily partitions start at the epoch and need the day after the last
        (["materialize", "--last", "9999-12-31"], "expected a day from 1970-01-01 to 9998-12-31"),
        (["generate", "--start", "1969-12-31"], "expected a day from 1970-01-01 to 9998-12-31"),
        (["generate", "--days", "10000000"], "expected at most 36,525, got 10,000,000"),
        (["generate", "--seed", "-1"], "expected 0 or more, got -1"),
        # the config's own refusal named neither the flag nor the least it takes
        (["generate", "--events-per-day", "5"], "argument --events-per-day: expected at least 20"),
        (["demo", "--events-per-day", "19"], "argument --events-per-day: expected at least 20"),
        (["demo", "--movielens", ""], "expected a folder, got an empty path"),
        (["generate", "--users", "19"], "argument --users: expected at least 20, got 19"),
        (["demo", "--items", "2000000"], "argument --items: expected at most 1,000,000"),
        (["recommend", "--users", "u.txt", "--k", "10**24"], "expected a whole number"),
        (["recommend", "--users", "u.txt", "--k", "100001"], "expected at most 10,000"),
    ],
)
def test_a_bad_argument_is_an_argparse_error_naming_it(argv, says, capsys):
    with pytest.raises(SystemExit) as raised:
        cli.build_parser().parse_args(argv)
    assert raised.value.code == 2
    assert says in capsys.readouterr().err


def test_good_arguments_parse():
    args = cli.build_parser().parse_args(["recommend", "--users", "u.txt", "--k", "5"])
    assert args.k == 5
    args = cli.build_parser().parse_args(["materialize", "--first", "2026-01-02"])
    assert args.first == "2026-01-02"


@pytest.mark.parametrize(
    ("select", "says"),
    [
        ("models/two_towr", "unknown asset models/two_towr"),
        ("lake/raw_events,lake/rawevents", "unknown asset lake/rawevents"),
        ("", "no asset given"),
        (" , ", "no asset given"),
    ],
)
def test_select_refuses_unknown_and_empty_lists_before_any_run(select, says):
    with pytest.raises(SystemExit, match=says):
        cli_args.selected(select, cli.DEMO_SELECTION, cli.NOT_IN_DEMO)


def test_select_keeps_known_keys_and_defaults_to_the_demo():
    assert cli_args.selected(
        "lake/raw_events, models/two_tower_model", cli.DEMO_SELECTION, cli.NOT_IN_DEMO
    ) == [
        "lake/raw_events",
        "models/two_tower_model",
    ]
    assert cli_args.selected(None, cli.DEMO_SELECTION, cli.NOT_IN_DEMO) == cli.DEMO_SELECTION


@pytest.mark.parametrize(
    ("content", "out", "says"),
    [
        ("3\nabc\n", None, r"users.txt:2: 'abc' is not a user id"),
        ("99999999999999999999\n", None, r"users.txt:1: '99999999999999999999' is not a user"),
        # lines end in \n only: a form feed is inside line 1, and the bad id is on line 2
        ("1\x0c2\nabc\n", None, r"users.txt:1: '1\\x0c2' is not a user id"),
        ("1\u20282\n", None, r"users.txt:1: .* is not a user id"),
        ("1_000\n", None, r"users.txt:1: '1_000' is not a user id"),
        ("+5\n", None, r"users.txt:1: '\+5' is not a user id"),
        ("-5\n", None, r"users.txt:1: '-5' is not a user id \(an integer from 0"),
        ("\u0663\n", None, r"users.txt:1: .* is not a user id"),  # an Arabic-Indic 3
        ("9223372036854775808\n", None, r"users.txt:1: '9223372036854775808' is not a user"),
        ("3\n", "recs.txt", "name a .parquet or .csv file"),
    ],
)
def test_recommend_names_the_bad_line_or_output(tmp_path, content, out, says):
    users = tmp_path / "users.txt"
    users.write_text(content)
    with pytest.raises(SystemExit, match=says):
        cli_recommend(str(users), 5, str(tmp_path / out) if out else None)
    with pytest.raises(SystemExit, match="cannot read it"):
        cli_recommend(str(tmp_path / "missing.txt"), 5)


def test_a_bad_input_deep_in_a_command_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    """``import-movielens`` on a folder without the files raised FileNotFoundError with a
    traceback; the message is the same, as the exit's, and RECASSETS_DEBUG=1 keeps the
    traceback for whoever needs it."""
    monkeypatch.setenv("RECASSETS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RECASSETS_DEBUG", raising=False)
    with pytest.raises(SystemExit) as raised:
        cli.main(["import-movielens", str(tmp_path / "nowhere")])
    message = str(raised.value.code)
    assert message.startswith("recassets import-movielens: FileNotFoundError: MovieLens import")
    assert "RECASSETS_DEBUG=1 shows where" in message
    monkeypatch.setenv("RECASSETS_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        cli.main(["import-movielens", str(tmp_path / "nowhere")])


def test_a_history_of_one_day_leaves_the_models_out_or_refuses_them_by_name(tmp_path, capsys):
    """The models train on the days before the last, which evaluates and gates them: with one
    landed day the demo and a default ``materialize`` build everything else (popularity
    serves); models asked for by name are refused before any run, naming why (they failed a
    minute into the run with a traceback). Two days: nothing changes."""
    from recassets.paths import Paths

    paths = Paths.at(tmp_path)
    (tmp_path / "landing" / "events" / "dt=2026-03-01").mkdir(parents=True)
    got = cli.trainable(paths, cli.DEMO_SELECTION, explicit=False)
    assert not set(got) & set(cli.MODELS)
    assert [k for k in cli.DEMO_SELECTION if k not in cli.MODELS] == list(got)
    said = capsys.readouterr().out
    assert "1 day of events landed (2026-03-01)" in said and "popularity serves" in said
    with pytest.raises(SystemExit, match=r"--select models/two_tower_model: 1 day of events"):
        cli.trainable(paths, ["lake/raw_events", "models/two_tower_model"], explicit=True)
    # no model asked for: nothing to say
    assert cli.trainable(paths, ["lake/raw_events"], explicit=True) == ["lake/raw_events"]
    (tmp_path / "landing" / "events" / "dt=2026-03-02").mkdir()
    assert cli.trainable(paths, cli.DEMO_SELECTION, explicit=False) == cli.DEMO_SELECTION
    assert capsys.readouterr().out == ""


def test_recommend_refuses_a_device_a_pipe_an_empty_list_and_a_bad_out_before_any_work(
    tmp_path, monkeypatch
):
    """/dev/zero was read until memory ran out, a pipe waited for a writer forever, an empty
    list answered nothing without a word, and a bad --out failed after the whole batch. The
    home here has no data: a refusal that came after the work would say so instead."""
    import os

    monkeypatch.setenv("RECASSETS_HOME", str(tmp_path / "home"))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for source in ("/dev/zero", str(fifo), str(tmp_path)):
        with pytest.raises(SystemExit, match="not a regular file"):
            cli_recommend(source, 5)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(SystemExit, match="no user id in it"):
        cli_recommend(str(empty), 5)
    users = tmp_path / "users.txt"
    users.write_bytes(b"\xef\xbb\xbf3\r\n4\r\n")  # a BOM and CRLF: two ids
    for out, says in (
        (tmp_path / "nowhere" / "r.csv", "does not exist"),
        (tmp_path / "d.csv", "a folder"),
    ):
        if says == "a folder":
            out.mkdir()
        with pytest.raises(SystemExit, match=f"--out .*: (its folder .* )?{says}"):
            cli_recommend(str(users), 5, str(out))
    with pytest.raises(ValueError, match="training_examples is empty"):  # the ids were read
        cli_recommend(str(users), 5, str(tmp_path / "r.csv"))


def test_a_failed_batch_write_leaves_the_earlier_file(tmp_path, monkeypatch):
    """The CSV was written in place: a full disk left half a file over a good one."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from recassets.training import recommend as R

    out = tmp_path / "recs.csv"
    out.write_text("user_id,item_id\n1,2\n")
    users = tmp_path / "users.txt"
    users.write_text("1\n")
    monkeypatch.setattr(R, "recommend", lambda *_a: pa.table({"user_id": [1], "item_id": [3]}))

    def full_disk(table, where):
        with open(where, "w") as f:
            f.write("user_id,it")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pacsv, "write_csv", full_disk)
    with pytest.raises(OSError, match="No space left"):
        R.cli_recommend(str(users), 5, str(out))
    assert out.read_text() == "user_id,item_id\n1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recs.csv", "users.txt"]


def test_generate_past_the_calendar_and_a_home_that_is_a_file_are_one_line(
    tmp_path, monkeypatch, capsys
):
    home = tmp_path / "home"
    monkeypatch.setenv("RECASSETS_HOME", str(home))
    with pytest.raises(SystemExit, match=r"ends after .* \(7 days after today, UTC"):
        cli.main(["generate", "--start", "9998-12-30", "--days", "3"])
    assert not home.exists()  # refused before anything landed
    soon = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=6)
    with pytest.raises(SystemExit, match="ends after"):  # landed, it opened no partition
        cli.main(["generate", "--start", soon.isoformat(), "--days", "3"])
    for odd in ("2026W011", "20260101"):  # fromisoformat's other forms: not a day folder's
        with pytest.raises(SystemExit):
            cli.main(["generate", "--start", odd])
        assert f"expected a date YYYY-MM-DD, got {odd!r}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["generate", "--days", "9" * 5000])  # said in a line, not the 5,000 digits
    err = capsys.readouterr().err
    assert "at most 30 digits, got 5000 characters" in err and len(err) < 1000
    assert not home.exists()
    home.write_text("")
    with pytest.raises(SystemExit, match=f"RECASSETS_HOME={home} is a file, not a folder"):
        cli.main(["status"])
    home.unlink()
    landing = tmp_path / "landing.txt"  # read as a landing of 0 days before
    landing.write_text("")
    monkeypatch.setenv("RECASSETS_LANDING", str(landing))
    with pytest.raises(SystemExit, match=f"RECASSETS_LANDING={landing} is a file, not a folder"):
        cli.main(["status"])


def test_audit_refuses_an_out_that_cannot_be_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RECASSETS_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit, match="--out '': an empty path"):
        cli.main(["audit", "latest", "--out", ""])
    with pytest.raises(SystemExit, match="a folder; name a file to write"):
        cli.main(["audit", "latest", "--out", str(tmp_path)])
    # written beside and renamed over: /dev/full became a report, a symlink a file
    import os

    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "target.html").write_text("kept")
    (tmp_path / "link.html").symlink_to(tmp_path / "target.html")
    for odd in ("/dev/null", str(tmp_path / "fifo"), str(tmp_path / "link.html")):
        with pytest.raises(SystemExit, match="a symlink, device or pipe, not a plain file"):
            cli.main(["audit", "latest", "--out", odd])
    cli_args.out_file("audit", str(tmp_path / "target.html"))  # a plain file: replaced, fine
    cli_args.out_file("audit", str(tmp_path / "new.html"))  # none yet: fine
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("tmp")]  # the probe left none
    if Path("/proc/self").is_dir():  # a folder that takes no file: said before the work
        with pytest.raises(SystemExit, match="its folder /proc takes no new file"):
            cli_args.out_file("audit", "/proc/r.html")


def test_a_damaged_delta_log_is_named_not_a_traceback_nor_an_empty_table(
    tmp_path, monkeypatch, capsys
):
    """A training_examples log cut short: ``recommend`` said "training_examples is empty"
    (any error read as no table), and ``status`` ended in Delta's Rust backtrace. Now the
    table, the log file and its line that is not JSON are said in one line
    (``lake.open_delta``); a missing table is still no table."""
    from pathlib import Path

    from recassets.paths import Paths
    from recassets.training.examples import available_days
    from support import planted

    paths = Paths.at(tmp_path / "home")
    assert available_days(paths) == []  # no table yet: nothing, no error
    table = paths.table("training_examples")
    planted.write_days(table, range(2))
    assert available_days(paths) == ["2026-01-01", "2026-01-02"]
    log = Path(table) / "_delta_log" / "00000000000000000001.json"
    log.write_bytes(log.read_bytes()[: len(log.read_bytes()) // 2])
    said = r"Delta table at \S*training_examples cannot be read: \S*00000000000000000001\.json line \d+ is not"
    with pytest.raises(ValueError, match=said):
        available_days(paths)
    monkeypatch.setenv("RECASSETS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RECASSETS_DEBUG", raising=False)
    for var in ("RECASSETS_LANDING", "RECASSETS_LAKE", "RECASSETS_ARTIFACTS", "RECASSETS_LINEAGE"):
        monkeypatch.delenv(var, raising=False)
    users = tmp_path / "users.txt"
    users.write_text("1\n")
    with pytest.raises(SystemExit, match="recommend: ValueError: the " + said):
        cli.main(["recommend", "--users", str(users)])
    with pytest.raises(SystemExit, match="1 table.s. cannot be read: lake/training_examples$"):
        cli.main(["status"])
    said_lines = [
        x for x in capsys.readouterr().out.splitlines() if "training_examples: cannot" in x
    ]
    assert len(said_lines) == 1 and re.search("cannot be read .the " + said, said_lines[0])

    def coloured(_args):  # delta-rs colours the causes it lists
        raise OSError("Object at location /lake/x.parquet not found: \x1b[31m↳\x1b[0m gone")

    monkeypatch.setattr(cli, "cmd_status", coloured)
    with pytest.raises(SystemExit) as got:
        cli.main(["status"])
    assert str(got.value).startswith("recassets status: OSError: Object at location /lake/x.")
    assert "\x1b" not in str(got.value) and "↳ gone" in str(got.value)


def test_evaluate_without_a_model_says_why_and_what_serves(tmp_path, monkeypatch):
    from recassets.paths import Paths
    from support import planted

    monkeypatch.setenv("RECASSETS_HOME", str(tmp_path / "home"))
    for var in ("RECASSETS_LANDING", "RECASSETS_LAKE", "RECASSETS_ARTIFACTS", "RECASSETS_LINEAGE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SystemExit, match="no training_examples yet; what serves now: popularity"):
        cli.main(["evaluate"])
    planted.write_days(Paths.at(tmp_path / "home").table("training_examples"), range(1))
    with pytest.raises(SystemExit, match=r"holds 1 day\(s\); none trained a two-tower"):
        cli.main(["evaluate"])


def test_a_range_outside_the_daily_partitions_is_refused_by_name(tmp_path, monkeypatch):
    """A landing day deleted after it was materialized is no partition: Dagster failed the run
    with an internal invariant; the command now says which day lies outside which window."""
    from recassets.paths import Paths

    for var in ("RECASSETS_START_DATE", "RECASSETS_END_DATE"):
        monkeypatch.delenv(var, raising=False)
    paths = Paths.from_env(str(tmp_path / "home"))
    for day in ("2026-01-01", "2026-01-02"):
        (tmp_path / "home" / "landing" / "events" / f"dt={day}").mkdir(parents=True)
    cli_args.within_partitions(paths, "2026-01-01", "2026-01-02")  # the window: no refusal
    cli_args.within_partitions(paths, None, None)
    with pytest.raises(SystemExit) as err:
        cli_args.within_partitions(paths, "2026-01-02", "2026-01-03")
    assert str(err.value).startswith(
        "recassets materialize --last 2026-01-03: outside the daily partitions "
        "2026-01-01..2026-01-02"
    )
    with pytest.raises(SystemExit, match="--first 2025-12-31: outside"):
        cli_args.within_partitions(paths, "2025-12-31", None)
    with pytest.raises(SystemExit, match="--first 2026-01-02 is after --last 2026-01-01"):
        cli_args.within_partitions(paths, "2026-01-02", "2026-01-01")  # went to Dagster
    # a stray folder far ahead is left out of the default range, and said
    (tmp_path / "home" / "landing" / "events" / "dt=2099-01-01").mkdir()
    said = []
    assert cli_args.landed_range(paths, said.append) == ("2026-01-01", "2026-01-02")
    assert said and said[0].startswith("left out: dt=2099-01-01 in ")
    with pytest.raises(SystemExit, match="--last 2099-01-01: outside the daily partitions"):
        cli_args.within_partitions(paths, None, "2099-01-01")
    monkeypatch.setenv("RECASSETS_START_DATE", "2025-12-31")  # the window opened to it
    monkeypatch.setenv("RECASSETS_END_DATE", "2026-01-03")
    cli_args.within_partitions(paths, "2025-12-31", "2026-01-03")


def test_dimension_days_before_the_first_partition_are_named_with_where_they_belong(
    tmp_path, monkeypatch
):
    """A users export laid out by sign-up day put its older sign-ups before the first event:
    no partition read those folders, and nothing said so; nor of a file beside the day
    folders."""
    from recassets.paths import Paths

    for var in ("RECASSETS_START_DATE", "RECASSETS_END_DATE"):
        monkeypatch.delenv(var, raising=False)
    paths = Paths.from_env(str(tmp_path / "home"))
    landing = tmp_path / "home" / "landing"
    for kind, day in (("events", "2026-01-02"), ("users", "2026-01-02"), ("items", "2026-01-02")):
        (landing / kind / f"dt={day}").mkdir(parents=True)
    said: list[str] = []
    assert cli_args.landed_range(paths, said.append) == ("2026-01-02", "2026-01-02")
    assert said == []  # every dimension day is a partition
    for day in ("2025-11-20", "2025-12-31"):
        (landing / "users" / f"dt={day}").mkdir()
    cli_args.landed_range(paths, said.append)
    assert said == [
        "left out: users landed on dt=2025-11-20, dt=2025-12-31, before the first daily "
        "partition 2026-01-02: never ingested; copy those files into users/dt=2026-01-02 under "
        "names of their own (prefixed with their day: the days' files may share a name), then "
        "materialize lake/users for 2026-01-02 (users land on the day first seen or later)"
    ]
    monkeypatch.setenv("RECASSETS_START_DATE", "2025-11-20")  # the window opened to them
    said.clear()
    cli_args.landed_range(paths, said.append)
    assert said == []
    # a file beside the day folders and a folder that is no day: never read, now said
    (landing / "events" / "stray.jsonl").write_text("{}\n")
    (landing / "events" / "dt=2026-02-30").mkdir()
    (landing / "events" / ".hidden.jsonl").write_text("{}\n")  # a producer's temporary: not said
    cli_args.landed_range(paths, said.append)
    assert said == [
        f"left out: dt=2026-02-30, stray.jsonl in {landing}/events: no dt=YYYY-MM-DD day "
        "folder, never read; land files in events/dt=<day>/"
    ]


def test_an_open_window_ends_at_today_or_the_latest_day_landed_within_a_week(tmp_path, monkeypatch):
    """Live data's window is open; a range past its end (today, or a day landed up to a week
    ahead) was not checked, and Dagster built every day up to it."""
    import datetime as dt

    from recassets.paths import Paths

    for var in ("RECASSETS_START_DATE", "RECASSETS_END_DATE"):
        monkeypatch.delenv(var, raising=False)
    paths = Paths.from_env(str(tmp_path / "home"))
    today = dt.datetime.now(dt.UTC).date()
    for day in (today - dt.timedelta(days=1), today + dt.timedelta(days=2)):
        (tmp_path / "home" / "landing" / "events" / f"dt={day}").mkdir(parents=True)
    cli_args.within_partitions(paths, None, str(today + dt.timedelta(days=2)))
    with pytest.raises(SystemExit, match=f"--last {today + dt.timedelta(days=3)}: outside"):
        cli_args.within_partitions(paths, None, str(today + dt.timedelta(days=3)))


def test_a_failed_runs_tail_shows_its_traceback_and_how_the_log_ended():
    spark = [f"ivy: resolving dependency {i}\n" for i in range(60)]
    frames = [f'  File "x{i}.py", line 1, in f\n' for i in range(50)]
    trace = ["Traceback (most recent call last):\n", *frames,
             "OverflowError: date value out of range\n", "  second line of it\n"]  # fmt: skip
    shown = cli_args.failure_tail("".join(["run starts\n", *trace, *spark]))
    assert shown.startswith("Traceback")
    assert "OverflowError: date value out of range\n  second line of it\n" in shown
    assert shown.endswith(spark[-1]) and shown.count("\n") <= 40  # and how the log ended
    ending = "".join(["run starts\n", *trace, "DagsterRunFailed: step raw_events failed\n"])
    assert cli_args.failure_tail(ending).endswith("DagsterRunFailed: step raw_events failed\n")
    assert cli_args.failure_tail("".join(spark)) == "".join(spark[-40:])  # no traceback: the end
    assert "Dagster instance" not in cli_args.failure_tail(ending)
    # the instance's own SQLite storage failing (a full disk, a lock) is said as such
    for error, why in (("disk I/O error", "full disk"), ("database is locked", "locked by")):
        stored = ["Traceback (most recent call last):\n", *frames[:3],
                  f"sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) {error}\n"]  # fmt: skip
        said = cli_args.failure_tail("".join(stored)).splitlines()[-1]
        assert said.startswith("recassets: the Dagster instance's storage") and why in said


@pytest.mark.parametrize(("debug", "traceback"), [("", False), ("0", False), ("false", False),
                                                  ("1", True), ("yes", True)])  # fmt: skip
def test_recassets_debug_off_values_keep_the_one_line_error(
    tmp_path, monkeypatch, debug, traceback
):
    """``RECASSETS_DEBUG=0`` showed the traceback: any value counted as on."""
    monkeypatch.setenv("RECASSETS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RECASSETS_DEBUG", debug)

    def bad_input(args):
        raise ValueError("a bad input")

    monkeypatch.setattr(cli, "cmd_status", bad_input)
    with pytest.raises(ValueError if traceback else SystemExit, match="a bad input"):
        cli.main(["status"])


def test_stop_signals_are_passed_on_except_those_ignored_and_handlers_restored(capsys):
    """Under ``nohup`` SIGHUP is ignored: passing it on would stop the run at logout. A
    signal that reaches the CLI while it waits goes to the run's group; after the body the
    handlers are as before. A stop is said, and a signal after a run that ended well is not
    called one."""
    import signal
    import subprocess
    import sys

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 start_new_session=True)  # fmt: skip
        term = signal.getsignal(signal.SIGTERM)
        with cli_args.stopping_with(child) as got:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN  # left ignored
            assert signal.getsignal(signal.SIGTERM) is not term  # taken
            signal.raise_signal(signal.SIGTERM)  # to us: passed on to the child's group
            assert child.wait(timeout=30) == -signal.SIGTERM
        assert got == [signal.SIGTERM]
        assert (
            signal.getsignal(signal.SIGTERM) is term
            and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        )
    finally:
        signal.signal(signal.SIGHUP, before)
    with pytest.raises(SystemExit) as stopped:
        cli_args.said_stopped([signal.SIGTERM], 1, "the.log")
    assert stopped.value.code == 128 + signal.SIGTERM
    assert "stopped by SIGTERM: the run was interrupted" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:  # a second signal killed it: not "marked failed"
        cli_args.said_stopped([signal.SIGTERM, signal.SIGTERM], -signal.SIGKILL, "the.log")
    assert stopped.value.code == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "killed by a second signal" in err and "marked failed;" not in err
    cli_args.said_stopped([signal.SIGTERM], 0, "the.log")  # the run had finished: no exit
    assert "came after the run had finished" in capsys.readouterr().err
    cli_args.said_stopped([], 1, "the.log")  # no signal: nothing said here
    assert capsys.readouterr().err == ""


def test_a_reader_that_leaves_early_ends_the_command_quietly_other_broken_pipes_are_said(
    tmp_path, monkeypatch
):
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    monkeypatch.setattr(sys, "stdout", os.fdopen(write, "w"))
    cli_args.end_if_reader_left(BrokenPipeError())  # stdout's reader is there: another pipe's
    cli_args.end_if_reader_left(ValueError())
    os.close(read)
    with pytest.raises(SystemExit) as stopped:
        cli_args.end_if_reader_left(BrokenPipeError())
    assert stopped.value.code == 141

    # a command that printed, then ended in its own SystemExit (a failed --verify): its
    # buffered output is dropped, where the interpreter's last flush printed "Exception
    # ignored ... BrokenPipeError" and exited 120
    read, write = os.pipe()
    monkeypatch.setattr(sys, "stdout", os.fdopen(write, "w"))
    print("verify: CHANGED ...")  # buffered: a pipe is no terminal
    os.close(read)
    cli_args.mute_if_reader_left()
    sys.stdout.write("after\n")
    sys.stdout.flush()  # into /dev/null now: no error

    # `recassets status | head -0`: the reader closes before the command writes its first line.
    env = {**os.environ, "RECASSETS_HOME": str(tmp_path / "home"), "PYTHONPATH": os.getcwd()}
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.Popen([sys.executable, "-m", "recassets.cli", "status"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err.decode()) == (141, "")


def test_a_closed_stdout_and_ctrl_c_are_no_tracebacks(tmp_path, monkeypatch, capsys):
    """`recassets status >&-` ended in "AttributeError: 'NoneType' object has no attribute
    'flush'" (Python leaves sys.stdout None), after `generate` had landed everything; Ctrl-C
    in `generate` printed a KeyboardInterrupt traceback."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "RECASSETS_HOME": str(tmp_path / "home"), "PYTHONPATH": os.getcwd()}
    env.pop("DAGSTER_HOME", None)
    closed = subprocess.run([sys.executable, "-m", "recassets.cli", "status"], env=env,
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.close(1), timeout=120)  # fmt: skip
    assert (closed.returncode, closed.stderr) == (0, "")

    def interrupted(_args) -> None:
        raise KeyboardInterrupt

    monkeypatch.setenv("RECASSETS_HOME", str(tmp_path / "home"))
    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), "status", interrupted))
    with pytest.raises(SystemExit) as stopped:
        cli.main(["status"])
    assert stopped.value.code == 130
    assert "recassets status: interrupted" in capsys.readouterr().err


def test_demo_refuses_synthetic_options_beside_a_release_and_blank_settings_are_defaults(
    tmp_path, monkeypatch
):
    """`demo --movielens ml --days 99 --events-per-day 7` ran, the four options ignored (and
    7 events a day, which generate refuses, accepted); RECASSETS_SERVE_MAX_K="" was refused
    as no integer where every other blank setting is the default."""
    from recassets.funnel.config import FunnelConfig

    monkeypatch.setenv("RECASSETS_HOME", str(tmp_path / "home"))
    (tmp_path / "ml").mkdir()
    with pytest.raises(SystemExit, match=r"--days, --events-per-day shape generated data"):
        cli.main(["demo", "--movielens", str(tmp_path / "ml"), "--days", "99",
                  "--events-per-day", "700"])  # fmt: skip
    with pytest.raises(SystemExit, match=r"--users shape generated data"):
        cli.main(["demo", "--movielens", str(tmp_path / "ml"), "--users", "5000"])
    assert not list((tmp_path / "home").rglob("*.jsonl"))  # refused before the import
    assert FunnelConfig.from_mapping({"RECASSETS_SERVE_MAX_K": " "}) == FunnelConfig()
    with pytest.raises(ValueError, match="RECASSETS_SERVE_MAX_K must be an integer"):
        FunnelConfig.from_mapping({"RECASSETS_SERVE_MAX_K": "abc"})


def _with_func(parser, command: str, func):
    """``parser`` whose ``command`` runs ``func``."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            action.choices[command].set_defaults(func=func)
    return parser


def test_an_empty_tag_or_users_file_and_a_huge_day_are_refused(capsys):
    """``serve --tag "$TAG"`` with TAG unset served the newest bento; ``--users ""`` was named
    "."; ``--events-per-day 10**12`` ended in a 745 GiB allocation's traceback."""
    from recassets import cli

    parser = cli.build_parser()
    for argv, says in ((["serve", "--tag", ""], "--tag is empty"),
                       (["recommend", "--users", " "], "--users is empty"),
                       (["generate", "--events-per-day", str(10**12)], "expected at most 10,000,000")):  # fmt: skip
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert says in capsys.readouterr().err
    assert (
        parser.parse_args(["serve", "--tag", "recassets_recommender:x"]).tag
        == "recassets_recommender:x"
    )
    assert parser.parse_args(["generate", "--events-per-day", "10000000"]).events_per_day == 10**7
    assert parser.parse_args(["generate", "--events-per-day", "20"]).events_per_day == 20
    for sub in ("generate", "recommend", "evaluate", "serve"):  # each default said
        with pytest.raises(SystemExit):
            parser.parse_args([sub, "--help"])
        assert "(default: " in capsys.readouterr().out
    for sub in ("materialize", "recommend"):  # never "(default: None)" nor said twice
        with pytest.raises(SystemExit):
            parser.parse_args([sub, "--help"])
        out = capsys.readouterr().out
        assert "(default: None)" not in out and ") (default:" not in out


def test_status_says_a_missing_home_and_an_unreadable_table_and_goes_on(
    tmp_path, monkeypatch, capsys
):
    """``status`` on a mistyped home said nothing was wrong; one table with an empty
    ``_delta_log`` ended it naming no table. It now says both, lists the rest and what serves."""
    from recassets import cli

    monkeypatch.setenv("RECASSETS_HOME", str(tmp_path / "nothere"))
    cli.main(["status"])
    out = capsys.readouterr().out
    assert "(no such folder: nothing landed or built here" in out
    assert "serving policy: popularity" in out and "newest bento: none built" in out
    home = tmp_path / "home"
    (home / "lake" / "bad" / "_delta_log").mkdir(parents=True)
    monkeypatch.setenv("RECASSETS_HOME", str(home))
    with pytest.raises(SystemExit) as err:
        cli.main(["status"])
    assert str(err.value) == "recassets status: 1 table(s) cannot be read: lake/bad"
    out = capsys.readouterr().out
    assert "lake/bad: cannot be read (" in out and "no such folder" not in out
    assert "Dagster UI" in out  # the rest was said


def test_materialize_days_follow_the_window_and_dates_only_go_where_days_are(tmp_path, monkeypatch):
    """RECASSETS_START_DATE narrowing the window made a plain `materialize` fail naming
    `--first`, which nobody gave; `--last` alone before the history said "--first ... is after
    --last"; dates beside the models alone were dropped, and beside lake/serving_log and the
    lake's assets they applied to both calendars."""
    from recassets.synthetic import SyntheticConfig, generate
    from tests.conftest import home_at

    paths = home_at(tmp_path)
    generate(paths, SyntheticConfig(days=3, events_per_day=20, initial_users=5))
    monkeypatch.delenv("RECASSETS_END_DATE", raising=False)
    monkeypatch.setenv("RECASSETS_START_DATE", "2026-01-02")
    assert cli_args.window_range(paths, "2026-01-01", "2026-01-03", None, None) == (
        "2026-01-02", "2026-01-03",
    )  # fmt: skip
    monkeypatch.delenv("RECASSETS_START_DATE")
    assert cli_args.window_range(paths, "2026-01-01", "2026-01-03", None, None) == (
        "2026-01-01", "2026-01-03",
    )  # fmt: skip
    with pytest.raises(SystemExit, match="--last 2025-12-01 is before the first daily"):
        cli_args.window_range(paths, "2026-01-01", "2026-01-03", None, "2025-12-01")
    with pytest.raises(SystemExit, match="--first 2026-02-01 is after the last daily"):
        cli_args.window_range(paths, "2026-01-01", "2026-01-03", "2026-02-01", None)
    log, lake, model = "lake/serving_log", "lake/raw_events", "models/two_tower_model"
    with pytest.raises(SystemExit, match="have none: leave them out"):
        cli_args.dated_selection("2026-01-02", None, [model], [], log)
    with pytest.raises(SystemExit, match="materialize them apart"):
        cli_args.dated_selection(None, "2026-01-02", [lake, log], [lake], log)
    cli_args.dated_selection("2026-01-02", None, [lake, model], [lake], log)  # days for the lake
    cli_args.dated_selection("2026-03-02", None, [log], [], log)  # the served days
    cli_args.dated_selection(None, None, [model, log, lake], [lake], log)  # no dates: fine


def test_a_bad_run_setting_is_refused_before_a_run_is_launched(tmp_path, monkeypatch):
    """RECASSETS_VOLUME_BAND=abc or RECASSETS_LANDING_SETTLE_SECONDS=1.5 reached the launched
    run (after its JVM had started): the run's environment is checked as it is made."""
    from tests.conftest import home_at

    paths = home_at(tmp_path)
    for name, value in (("RECASSETS_VOLUME_BAND", "abc"), (cli.SETTLE_ENV, "1.5")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=name):
            cli.dagster_env(paths)
        monkeypatch.delenv(name)
    assert (
        cli.dagster_env(paths, {"RECASSETS_VOLUME_BAND": "off"})["RECASSETS_VOLUME_BAND"] == "off"
    )


def test_users_and_items_size_the_generated_world(tmp_path, monkeypatch, capsys):
    """``--events-per-day`` alone made a denser stream over the default 2,000 users and 1,000
    items (review at volume, 2026-12-07): the population is sized too, a twentieth of it new
    each day; the defaults keep the default world."""
    import json

    monkeypatch.setenv("RECASSETS_HOME", str(tmp_path / "home"))
    cli.main(["generate", "--days", "2", "--events-per-day", "200", "--users", "60",
              "--items", "40"])  # fmt: skip
    said = capsys.readouterr().out
    assert "(60 users, 40 items)" in said
    items = tmp_path / "home" / "landing" / "items"
    ids = {json.loads(line)["item_id"] for f in items.rglob("*.jsonl") for line in f.open()}
    assert len(ids) == 40 + 2  # the first day's 40 and 40 // 20 = 2 new on the second
    defaults = cli.build_parser().parse_args(["generate"])
    assert cli_args.world_sizes(defaults) == {"initial_users": 2_000, "initial_items": 1_000,
                                              "new_users_per_day": 100, "new_items_per_day": 50}  # fmt: skip
