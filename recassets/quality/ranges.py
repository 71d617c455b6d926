"""Validating a range of daily partitions with one Great Expectations validation, reported day
by day.

A per-day suite (``raw_events_suite``, ``feature_suite``) holds three kinds of expectation:

* row expectations with the same bounds every day (a column not null, in a set, >= 0): a row
  breaks them whatever its day, so they are validated over all the range's rows as they are;
* row expectations whose meaning is their partition's own day, marked by
  ``meta["range_form"]`` (``recassets.quality.suites.RANGE_FORMS``): ``ts`` inside the
  partition's UTC day becomes ``ts``'s offset from its partition's 00:00 UTC in
  ``[0, 86 400 s)``; ``event_id`` unique within its day becomes ``dt`` + ``event_id`` unique.
  Both are derived columns, so one expectation over the range means the same as one per day;
* table expectations (the row-count band): judged from each day's row count, counted in the
  one groupBy that also fills the cache.

``PartitionRange.validate`` runs, over the range's rows persisted once:

1. one GE validation of the range forms, ``BOOLEAN_ONLY`` (GE bundles the aggregates into a
   few Spark jobs, as for one day). A form that passes passes on every day: a map expectation
   without ``mostly`` fails on a set of rows iff it fails on one of its rows.
2. Only when a form fails: one Spark groupBy that counts, per day, the rows that break each
   failing form (the same predicate as GE's Spark condition). A day with none passes it.
   That finds the days; GE still judges them (step 3), so a predicate broader than GE's
   costs a detail, never a wrong verdict; a failing form on which it finds no day sends
   every day of the range to step 3.
3. One GE ``SUMMARY`` validation of the day's own expectation for each (day, failing
   expectation) found, restricted to the day by a ``row_condition``: counts, observed values
   and sample rows exactly as the per-day check reports them.

A failure-free range (the usual case) is one GE validation and one groupBy, where a loop of
per-day validations cost a second and more per day (a 162-day backfill: 3.5 minutes).
"""

# great_expectations ships py.typed but re-exports gx.expectations.Expect* without __all__ or
# "import X as X", so the checker would flag its documented import path as private.
# pyright: reportPrivateImportUsage=false

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recassets.preload import settle
from recassets.quality.runner import (
    SAMPLE_ROWS,
    Failure,
    QualityReport,
    _config,
    _kwargs,
    _observed,
    _run,
    _samples,
    plain,
)
from recassets.quality.suites import UTC_DAY, WITHIN_DAY

if TYPE_CHECKING:
    import great_expectations as gx
    from pyspark.sql import Column, DataFrame

DAY_COLUMN = "dt"
MICROS_PER_DAY = 86_400_000_000
ROW_COUNT = "expect_table_row_count_to_be_between"
# The Spark predicate of the rows a row expectation counts as unexpected (step 2), by type.
_LOCATABLE = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_unique",
)


def iso_days(days: Sequence[dt.date | str]) -> list[str]:
    """The days as sorted, distinct ISO strings."""
    return sorted({d if isinstance(d, str) else d.isoformat() for d in days})


def _is_table_level(expectation: Any) -> bool:
    return expectation.expectation_type.startswith("expect_table_")


def _derived_name(column: str | tuple[str, ...], form: str) -> str:
    name = column if isinstance(column, str) else "__".join(column)
    return f"__{name}_{'us_into_day' if form == UTC_DAY else 'within_day'}"


def _derived_column(column: str | tuple[str, ...], form: str, day_column: str) -> Column:
    from pyspark.sql import functions as F

    if not isinstance(column, str):  # a compound key: its parts, unit-separated, after the day
        parts = [F.col(c).cast("string") for c in column]
        return F.concat(
            F.col(day_column).cast("string"), *[F.concat(F.lit("\x1f"), p) for p in parts]
        )

    if form == UTC_DAY:
        # Microseconds since the partition day's 00:00 UTC: exact integers, and independent
        # of the session time zone (unix_micros and unix_date count from the epoch in UTC).
        return F.unix_micros(F.col(column)) - F.unix_date(F.col(day_column)).cast("long") * F.lit(
            MICROS_PER_DAY
        )
    # Null when the value is null (concat propagates it): GE skips it, as it does per day.
    return F.concat(F.col(day_column).cast("string"), F.lit(" "), F.col(column).cast("string"))


def _range_form(
    expectation: Any, day: str
) -> tuple[Any, tuple[str | tuple[str, ...], str, str] | None]:
    """The expectation over all the range's rows that stands for ``expectation`` on ``day``
    (its range form, or a fresh copy of itself), and the derived column it reads, if any:
    ``(source column, range form, derived column name)``."""
    settle()
    import great_expectations as gx

    if (getattr(expectation, "mostly", 1) or 1) < 1:
        # A fraction of the range's rows says nothing of each day's fraction.
        raise ValueError(f"{expectation.expectation_type}: no range form with mostly < 1")
    form = (expectation.meta or {}).get("range_form")
    column = getattr(expectation, "column", None)
    if form is None:
        return type(expectation)(**_fields(expectation)), None
    if column is None and form == WITHIN_DAY:  # a compound key unique within its day
        column = tuple(expectation.column_list)
    assert column is not None  # suites set range forms on column expectations only
    E = gx.expectations
    derived = (column, form, _derived_name(column, form))
    if form == UTC_DAY:
        start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=dt.UTC)
        bounds = (expectation.min_value, expectation.max_value, expectation.strict_max)
        if bounds != (start, start + dt.timedelta(days=1), True):
            raise ValueError(f"{column}: range_form {UTC_DAY} on bounds {bounds}, not {day}'s")
        return (
            E.ExpectColumnValuesToBeBetween(
                column=derived[2],
                min_value=0,
                max_value=MICROS_PER_DAY,
                strict_max=True,
                description=f"{column} inside its partition's UTC day",
            ),
            derived,
        )
    if form == WITHIN_DAY:
        label = column if isinstance(column, str) else " + ".join(column)
        return (
            E.ExpectColumnValuesToBeUnique(
                column=derived[2], description=f"{label} unique within its day"
            ),
            derived,
        )
    raise ValueError(f"unknown range_form {form!r} on {expectation.expectation_type}({column})")


def _fields(expectation: Any) -> dict[str, Any]:
    """An expectation's constructor arguments (a copy: an expectation belongs to one suite):
    its kwargs as configured, with its description, meta and notes."""
    fields = {k: v for k, v in expectation.configuration.kwargs.items() if k != "batch_id"}
    for name in ("description", "meta", "notes"):
        if getattr(expectation, name, None) is not None:
            fields[name] = getattr(expectation, name)
    return fields


def _unexpected(expectation: Any) -> Column | None:
    """Rows that break ``expectation`` (a range form), as GE's Spark condition decides them:
    null values are missing, not unexpected, except for not-null. None: no predicate here."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    kind = expectation.expectation_type
    if kind not in _LOCATABLE:
        return None
    within = _where(getattr(expectation, "row_condition", None))
    if within is None:
        return None  # a condition with no predicate here: GE judges every day
    c = F.col(expectation.column)
    if kind == "expect_column_values_to_not_be_null":
        return within & c.isNull()
    if kind == "expect_column_values_to_be_in_set":
        return within & c.isNotNull() & ~c.isin(list(expectation.value_set))
    if kind == "expect_column_values_to_be_unique":
        return within & c.isNotNull() & (F.count(F.lit(1)).over(Window.partitionBy(c)) > 1)
    ok = F.lit(True)
    if expectation.min_value is not None:
        low = F.lit(expectation.min_value)
        ok = ok & ((c > low) if expectation.strict_min else (c >= low))
    if expectation.max_value is not None:
        high = F.lit(expectation.max_value)
        ok = ok & ((c < high) if expectation.strict_max else (c <= high))
    return within & c.isNotNull() & ~ok


def _where(condition: Any) -> Column | None:
    """The rows a ``row_condition`` keeps, as a Spark predicate (every row when there is none);
    None for a condition other than ``column == value`` or ``column IN values``."""
    from pyspark.sql import functions as F

    if condition is None:
        return F.lit(True)
    operator = getattr(condition, "operator", None)
    column = getattr(getattr(condition, "column", None), "name", None)
    if column is None or str(operator) not in ("==", "IN"):
        return None
    value = condition.parameter
    return F.col(column).isin(list(value)) if str(operator) == "IN" else F.col(column) == value


def _row_count_failure(expectation: Any, rows: int) -> Failure | None:
    """The per-day row-count expectation judged from the day's count, reported as GE reports
    it (observed value, no sample rows)."""
    lo, hi = expectation.min_value, expectation.max_value
    ok = (lo is None or (rows > lo if expectation.strict_min else rows >= lo)) and (
        hi is None or (rows < hi if expectation.strict_max else rows <= hi)
    )
    if ok:
        return None
    return Failure(
        expectation=ROW_COUNT,
        column=None,
        description=expectation.description,
        kwargs=_kwargs(expectation.configuration),
        observed={"observed_value": rows},
    )


def _statistics(evaluated: int, failed: int) -> dict[str, Any]:
    """GE's statistics of one validation, for the day's suite."""
    ok = evaluated - failed
    return {
        "evaluated_expectations": evaluated,
        "successful_expectations": ok,
        "unsuccessful_expectations": failed,
        "success_percent": ok / evaluated * 100 if evaluated else None,
    }


@dataclass
class _Form:
    """One expectation of step 1 and the per-day expectations it stands for."""

    expectation: Any
    members: list[tuple[str, int]] = field(default_factory=list)  # (day, position in suite)


class PartitionRange:
    """The rows of some days of a daily-partitioned table, persisted once, validated against
    each day's own suite in one GE validation (see the module docstring).

    Use as a context manager: ``row_counts()`` (to build the suites whose bounds depend on
    volume), then ``validate(suites)``; the cache is dropped on exit.
    """

    def __init__(
        self, frame: DataFrame, days: Sequence[dt.date | str], day_column: str = DAY_COLUMN
    ) -> None:
        self.days = iso_days(days)
        self.day_column = day_column
        self._source = frame
        self.frame: DataFrame | None = None
        self._counts: dict[str, int] | None = None

    def __enter__(self) -> PartitionRange:
        # Every expectation, the counts and the locating groupBy scan these rows: read once.
        self.frame = self._source.persist()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.frame is not None:
            self.frame.unpersist()
            self.frame = None

    def row_counts(self) -> dict[str, int]:
        """Rows per day of the range, 0 for a day without any (one job; it fills the cache)."""
        from pyspark.sql import functions as F

        if self._counts is None:
            rows = self._persisted().groupBy(self.day_column).agg(F.count("*").alias("n"))
            found = {_iso(r[self.day_column]): int(r["n"]) for r in rows.collect()}
            self._counts = {d: found.get(d, 0) for d in self.days}
        return self._counts

    def _persisted(self) -> DataFrame:
        if self.frame is None:
            raise RuntimeError("PartitionRange is used inside a `with` block")
        return self.frame

    def validate(
        self, suites: Mapping[str, gx.ExpectationSuite], sample_rows: int = SAMPLE_ROWS
    ) -> dict[str, QualityReport]:
        """Each day's report, as ``runner.validate`` gives it for the day's rows and suite."""
        settle()
        import great_expectations as gx

        if sorted(suites) != self.days:
            raise ValueError(f"one suite per day of the range: {self.days}, got {sorted(suites)}")
        counts = self.row_counts()
        forms: dict[str, _Form] = {}
        derived: dict[str, tuple[str | tuple[str, ...], str]] = {}
        table_level: dict[str, list[int]] = {d: [] for d in self.days}
        for day, suite in suites.items():
            for i, expectation in enumerate(suite.expectations):
                if _is_table_level(expectation):
                    if expectation.expectation_type != ROW_COUNT:
                        raise ValueError(f"no range form for {expectation.expectation_type}")
                    table_level[day].append(i)
                    continue
                form, extra = _range_form(expectation, day)
                if extra:
                    derived[extra[2]] = extra[:2]
                key = repr(sorted(form.configuration.to_json_dict()["kwargs"].items()))
                key = f"{form.expectation_type} {key}"
                forms.setdefault(key, _Form(form)).members.append((day, i))

        frame = self._persisted()
        for name, (column, form) in derived.items():
            frame = frame.withColumn(name, _derived_column(column, form, self.day_column))

        # 1. One validation of every range form over all the rows.
        failing: list[_Form] = []
        if forms:
            keys = list(forms)
            for n, key in enumerate(keys):
                forms[key].expectation.meta = {
                    **(forms[key].expectation.meta or {}),
                    "range_form_index": n,
                }
            suite = gx.ExpectationSuite(
                name="range", expectations=[forms[k].expectation for k in keys]
            )
            first = _run(frame, suite, {"result_format": "BOOLEAN_ONLY"})
            failing = [
                forms[keys[_config(r).meta["range_form_index"]]]
                for r in first.results
                if not r.success
            ]

        # 2. The days each failing form fails on.
        suspects = self._locate(frame, failing)

        # 3. The day's own expectations on the days found, restricted to each day.
        detailed = self._detail(suites, suspects, sample_rows)

        reports = {}
        for day, suite in suites.items():
            failures: dict[int, Failure] = dict(detailed.get(day, {}))
            for i in table_level[day]:
                failure = _row_count_failure(suite.expectations[i], counts[day])
                if failure:
                    failures[i] = failure
            meta = suite.meta or {}
            reports[day] = QualityReport(
                suite=suite.name,
                success=not failures,
                statistics=_statistics(len(suite.expectations), len(failures)),
                failures=[failures[i] for i in sorted(failures)],
                notes=list(meta.get("notes") or []),
                context=plain(dict(meta.get("context") or {})),
            )
        return reports

    def _locate(self, frame: DataFrame, failing: list[_Form]) -> list[tuple[str, int]]:
        """(day, position in the day's suite) of each per-day expectation to detail: the
        members of a failing form on a day with at least one unexpected row."""
        from pyspark.sql import functions as F

        suspects: list[tuple[str, int]] = []
        located: list[tuple[int, _Form, Column]] = []
        for n, form in enumerate(failing):
            condition = (
                _unexpected(form.expectation)
                if getattr(form.expectation, "column", None) in frame.columns
                else None
            )
            if condition is None:
                suspects += form.members  # no predicate (or no column): GE judges every day
            else:
                located.append((n, form, condition))
        if located:
            flagged = frame.select(
                self.day_column, *[c.alias(f"__unexpected_{n}") for n, _, c in located]
            )
            rows = (
                flagged.groupBy(self.day_column)
                .agg(*[F.count_if(f"__unexpected_{n}").alias(f"n{n}") for n, _, _ in located])
                .collect()
            )
            for n, form, _ in located:
                days = {_iso(r[self.day_column]) for r in rows if r[f"n{n}"]}
                # None found: the predicate and GE disagree; GE judges every day.
                suspects += [m for m in form.members if m[0] in days] or form.members
        return suspects

    def _detail(
        self,
        suites: Mapping[str, gx.ExpectationSuite],
        suspects: list[tuple[str, int]],
        sample_rows: int,
    ) -> dict[str, dict[int, Failure]]:
        """Failures by day and position, from one SUMMARY validation of the suspects."""
        settle()
        import great_expectations as gx
        from great_expectations.expectations.row_conditions import Column as Col

        if not suspects:
            return {}
        by_columns: dict[tuple[str, ...], list[tuple[str, int]]] = {}
        for day, i in suspects:
            columns = tuple((suites[day].meta or {}).get("sample_columns") or [])
            by_columns.setdefault(columns, []).append((day, i))
        out: dict[str, dict[int, Failure]] = {}
        for columns, members in by_columns.items():
            expectations = []
            for day, i in members:
                own = suites[day].expectations[i]
                fields = _fields(own)
                on_day = Col(self.day_column) == day
                own_condition = getattr(own, "row_condition", None)
                fields["row_condition"] = (
                    on_day if own_condition is None else own_condition & on_day
                )
                fields["meta"] = {**(own.meta or {}), "range_day": day, "range_position": i}
                expectations.append(type(own)(**fields))
            detail_format: dict[str, Any] = {
                "result_format": "SUMMARY",
                "partial_unexpected_count": sample_rows,
            }
            if columns:
                detail_format["unexpected_index_column_names"] = list(columns)
            suite = gx.ExpectationSuite(name="range-failures", expectations=expectations)
            result = _run(self._persisted(), suite, detail_format)
            for r in result.results:
                if r.success:
                    continue
                meta = _config(r).meta
                day, i = meta["range_day"], meta["range_position"]
                own = suites[day].expectations[i]
                column = getattr(own, "column", None)
                out.setdefault(day, {})[i] = Failure(
                    expectation=own.expectation_type,
                    column=column,
                    description=own.description,
                    kwargs=_kwargs(own.configuration),
                    observed=_observed(r),
                    sample_rows=_samples(r, sample_rows, [*columns, column]),
                )
        return out


def _iso(day: dt.date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()
