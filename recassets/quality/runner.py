"""Running a suite on a DataFrame and reporting what failed, with sample rows.

Spark DataFrames are validated where they are, by Great Expectations' Spark datasource (it
works with pyspark 4.2: every metric is a Spark job, nothing is collected but the sample
rows). pandas DataFrames go through the pandas datasource; they are for tests and notebooks.

Two passes, because GE's detailed result formats cost one Spark job per expectation even when
it passes (``partial_unexpected_list`` and the sample rows are fetched unconditionally): the
whole suite first with ``BOOLEAN_ONLY`` (GE bundles those aggregates into a few jobs; a
20-expectation suite on a tiny frame took 1 s against 7 s with ``SUMMARY`` on 2 cores), then
only the failing expectations again with ``SUMMARY``, limited to ``SAMPLE_ROWS`` rows each.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recassets.preload import settle

if TYPE_CHECKING:
    import great_expectations as gx  # imported where used: it takes seconds (see suites.py)
    import pandas as pd
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )
    from great_expectations.expectations.expectation import Expectation
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

SAMPLE_ROWS = 5
_quieted = False


def _quiet_gx() -> None:
    """GE logs at INFO (one of its modules pins its own logger to INFO) and draws tqdm bars
    per validation: in a Dagster run log or a test that is noise. Done once, on first use,
    not at import."""
    global _quieted
    if not _quieted:
        for name in ("great_expectations", "great_expectations.data_context.types.base"):
            logging.getLogger(name).setLevel(logging.WARNING)
        _quieted = True


def _context():
    """A fresh ephemeral GE context (a few ms): nothing is shared or persisted between
    validations. Built from an explicit config rather than ``get_context(mode="ephemeral")``'s
    default, which also sets up a temporary data-docs site nothing here renders; progress
    bars off."""
    settle()  # a background `import great_expectations` (recassets.preload) finishes first
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    _quiet_gx()
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


@dataclass
class Failure:
    """One failing expectation: what was expected (``expectation``, ``column``, ``kwargs``),
    what was seen (``observed``: the observed value of an aggregate, or the unexpected count
    and percent of a per-row expectation, or the error that stopped it) and up to
    ``SAMPLE_ROWS`` failing rows (the suite's ``sample_columns`` and the failing column)."""

    expectation: str
    column: str | None
    description: str | None
    kwargs: dict[str, Any]
    observed: dict[str, Any]
    sample_rows: list[dict[str, Any]] = field(default_factory=list)

    def line(self, limit: int = 160) -> str:
        """One line for a log: ``expectation(column): what was seen (expected what)``, the
        observed part cut to keep the bounds in (``observed_value=294`` alone left the
        operator to look up the range it missed)."""
        expected = _expected(self.kwargs)
        tail = f" (expected {expected})" if expected else ""
        head = f"{self.label}: "
        seen = _fmt_observed(self.observed)
        room = max(limit - len(head) - len(tail), 20)
        return head + (seen if len(seen) <= room else seen[: room - 1] + "…") + tail

    @property
    def label(self) -> str:
        """``expectation(column)``, with the expectation's row condition where it has one: the
        rating and the watch bounds are both ``expect_column_values_to_be_between(value)``,
        told apart only by it (their sample rows were filed under one key, one overwriting
        the other)."""
        if not self.column:
            return self.expectation
        condition = _condition_text(self.kwargs.get("row_condition"))
        where = f" where {condition}" if condition else ""
        return f"{self.expectation}({self.column}{where})"


@dataclass
class QualityReport:
    """The outcome of one suite on one DataFrame."""

    suite: str
    success: bool
    statistics: dict[str, Any]
    failures: list[Failure]
    notes: list[str] = field(default_factory=list)  # expectations left out, and why
    context: dict[str, Any] = field(default_factory=dict)  # the bounds' inputs (trailing counts...)

    def failure(self, expectation: str, column: str | None = None) -> Failure:
        """The failure of ``expectation`` (on ``column``); KeyError when it did not fail."""
        for f in self.failures:
            if f.expectation == expectation and f.column == column:
                return f
        raise KeyError(f"{expectation}({column}) did not fail in {self.suite}")

    def to_markdown(self) -> str:
        """A Dagster-metadata-sized summary: verdict, statistics, notes, then one section per
        failing expectation with what was observed and the sample rows as a table."""
        s = self.statistics
        lines = [
            f"**{self.suite}: {'passed' if self.success else 'FAILED'}**: "
            f"{s.get('successful_expectations', 0)}/{s.get('evaluated_expectations', 0)} expectations met",
        ]
        lines += [f"- note: {n}" for n in self.notes]
        if self.failures:
            lines += [
                "",
                "| expectation | column | expected | observed |",
                "| --- | --- | --- | --- |",
            ]
            for f in self.failures:
                lines.append(
                    f"| {f.expectation} | {f.column or ''} | {_md_cell(_expected(f.kwargs))} | "
                    f"{_md_cell(_fmt_observed(f.observed))} |"
                )
            for f in self.failures:
                if f.sample_rows:
                    lines += [
                        "",
                        f"Sample failing rows of {f.label}:",
                        "",
                        *_md_table(f.sample_rows),
                    ]
        return "\n".join(lines)

    def sample_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Sample rows by failing expectation label, JSON-ready."""
        return {f.label: f.sample_rows for f in self.failures if f.sample_rows}


def _expected(kwargs: dict[str, Any]) -> str:
    """The expectation's bounds and options; its column and row condition are in the label."""
    skip = ("column", "batch_id", "row_condition", "condition_parser")
    return ", ".join(f"{k}={v}" for k, v in kwargs.items() if k not in skip)


def _condition_text(condition: Any) -> str:
    """A row condition as GE 1.x serializes it (``{"column": {"name": "event_type"},
    "operator": "==", "parameter": "rating", ...}``), or a string one, as text to read."""
    if not condition:
        return ""
    if isinstance(condition, dict) and "operator" in condition:
        column = condition.get("column")
        name = column.get("name") if isinstance(column, dict) else column
        return f"{name} {condition['operator']} {condition.get('parameter')!r}"
    return str(condition)


def _fmt_observed(observed: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in observed.items())


def _md_cell(text: str, limit: int = 200) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _md_table(rows: list[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    out = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    out += ["| " + " | ".join(_md_cell(str(r.get(c, ""))) for c in cols) + " |" for r in rows]
    return out


def plain(value: Any) -> Any:
    """A JSON-ready copy: timestamps as ISO strings, numpy scalars as Python numbers, NaN and
    the infinities as the strings "NaN", "Infinity" and "-Infinity" (shown as None, a NaN
    CTR sent the operator looking for nulls, which the failing expectation ignores), pandas'
    NaT as None (sample rows go into Dagster metadata)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):  # numpy's float64 included
        if math.isnan(value):
            return "NaN"
        return float(value) if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date)):  # pandas Timestamp is a datetime
        try:
            return value.isoformat()
        except ValueError:  # NaT
            return None
    if hasattr(value, "item"):  # numpy scalar
        return plain(value.item())
    if str(value) in ("NaT", "<NA>"):
        return None
    return str(value)


def _is_pandas(df: Any) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas ships with GE
        return False
    return isinstance(df, pd.DataFrame)


def _utc_aware(pdf: pd.DataFrame) -> pd.DataFrame:
    """toPandas gives naive datetimes (session time zone, UTC here); suites bound ``ts`` with
    aware UTC datetimes, and pandas refuses to compare the two, so naive columns are read as
    UTC, the contract's zone."""
    import pandas as pd

    out = pdf
    for name, dtype in pdf.dtypes.items():
        if pd.api.types.is_datetime64_dtype(dtype) and getattr(dtype, "tz", None) is None:
            out = out if out is not pdf else pdf.copy()
            out[name] = out[name].dt.tz_localize("UTC")
    return out


def _run(df: Any, suite: gx.ExpectationSuite, result_format: dict):
    context = _context()
    name = f"quality-{uuid.uuid4().hex[:8]}"
    if _is_pandas(df):
        source = context.data_sources.add_pandas(name)
        df = _utc_aware(df)
    else:
        # persist=False: GE would persist the frame and never unpersist it; the caller caches.
        source = context.data_sources.add_spark(name, persist=False)
    batch_definition = source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe(
        "whole"
    )
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    return batch.validate(suite, result_format=result_format)


def _observed(result: ExpectationValidationResult) -> dict[str, Any]:
    r = result.result or {}
    if result.exception_info and result.exception_info.get("raised_exception"):
        return {"error": result.exception_info.get("exception_message")}
    # GE annotates exception_info as a dict; the check guards what its runtime hands back
    if isinstance(result.exception_info, dict) and not r:  # pyright: ignore[reportUnnecessaryIsInstance]
        # A metric that failed to resolve: GE keys exception_info by metric id.
        messages = [
            v.get("exception_message")
            for v in result.exception_info.values()
            if isinstance(v, dict)
        ]
        if any(messages):
            return {"error": "; ".join(dict.fromkeys(m for m in messages if m))}
    if "observed_value" in r:
        return {"observed_value": plain(r["observed_value"])}
    keys = (
        "unexpected_count",
        "unexpected_percent",
        "element_count",
        "missing_count",
        "partial_unexpected_list",
    )
    return {k: plain(r[k]) for k in keys if k in r}


def _samples(
    result: ExpectationValidationResult, limit: int, columns: Sequence[str | None]
) -> list[dict[str, Any]]:
    """The failing rows GE returned, columns in a fixed order: the suite's sample columns,
    then the failing column (GE puts the failing column first for pandas, last for Spark)."""
    rows = (result.result or {}).get("partial_unexpected_index_list") or []
    out = []
    for row in rows[:limit]:
        if not isinstance(row, dict):  # a pandas index, when the suite names no columns
            out.append({"index": plain(row)})
            continue
        order = [c for c in columns if c in row] + [c for c in row if c not in columns]
        out.append({c: plain(row[c]) for c in order})
    return out


def _config(result: ExpectationValidationResult) -> ExpectationConfiguration:
    """The configuration ``result`` was validated with: GE types it optional, and sets it on
    every result of a suite's validation."""
    config = result.expectation_config
    assert config is not None
    return config


def _kwargs(config: ExpectationConfiguration) -> dict[str, Any]:
    return plain({k: v for k, v in config.kwargs.items() if k != "batch_id"})


def validate(df: Any, suite: gx.ExpectationSuite, sample_rows: int = SAMPLE_ROWS) -> QualityReport:
    """Validate ``df`` (a Spark or pandas DataFrame) against ``suite``.

    The suite's ``meta["sample_columns"]`` name the columns shown for each failing row (they
    must exist in ``df``); ``meta["notes"]`` and ``meta["context"]`` pass through to the report.
    """
    settle()  # a background `import great_expectations` (recassets.preload) finishes first
    import great_expectations as gx

    meta = suite.meta or {}
    first = _run(df, suite, {"result_format": "BOOLEAN_ONLY"})
    statistics = {k: plain(v) for k, v in (first.statistics or {}).items()}
    failing = [r for r in first.results if not r.success]
    failures: list[Failure] = []
    if failing:
        detail_suite = gx.ExpectationSuite(
            name=f"{suite.name}-failures",
            expectations=[_copy_expectation(_config(r)) for r in failing],
        )
        sample_columns = list(meta.get("sample_columns") or [])
        detail_format: dict[str, Any] = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": sample_rows,
        }
        if sample_columns:
            detail_format["unexpected_index_column_names"] = sample_columns
        detailed = _run(df, detail_suite, detail_format)
        # GE reorders results; report them in the suite's order. (type, column, row
        # condition) is unique within the suites of this package.
        position = {_order_key(e.configuration): i for i, e in enumerate(suite.expectations)}
        results = sorted(
            detailed.results, key=lambda r: position.get(_order_key(_config(r)), 1 << 30)
        )
        for r in results:
            config = _config(r)
            failures.append(
                Failure(
                    expectation=config.type,
                    column=config.kwargs.get("column"),
                    description=config.description,
                    kwargs=_kwargs(config),
                    observed=_observed(r),
                    sample_rows=_samples(
                        r, sample_rows, sample_columns + [config.kwargs.get("column")]
                    ),
                )
            )
    return QualityReport(
        suite=suite.name,
        success=bool(first.success),
        statistics=statistics,
        failures=failures,
        notes=list(meta.get("notes") or []),
        context=plain(dict(meta.get("context") or {})),
    )


def _order_key(config: ExpectationConfiguration) -> tuple[str, Any, str]:
    kwargs = _kwargs(config)
    return config.type, kwargs.get("column"), _condition_text(kwargs.get("row_condition"))


def _copy_expectation(config: ExpectationConfiguration) -> Expectation:
    """A fresh Expectation from a result's configuration (an expectation belongs to one suite)."""
    return config.to_domain_obj()
