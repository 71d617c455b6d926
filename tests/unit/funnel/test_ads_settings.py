"""The ads' settings and files at start-up: several workers never count alone, a number no
double can hold is a row error (not a failed load), and the bundle carries exactly the bytes
it validated."""

from __future__ import annotations

import hashlib
import json

import pytest

from recassets.bento import preflight
from recassets.funnel import ads as A
from recassets.funnel import campaigns as C
from tests.unit.funnel.test_ads import ROW, _write

# -- several workers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"RECASSETS_SERVE_WORKERS": "2"},  # auto, no Redis: in process
        {"RECASSETS_SERVE_WORKERS": "3", A.STATE_ENV: "process",
         "RECASSETS_REDIS_URL": "redis://127.0.0.1:1/0"},
    ],
)  # fmt: skip
def test_several_workers_with_counters_in_process_are_refused(tmp_path, env):
    """Each worker of ``bentoml serve`` builds its own state: in process, each spent every
    campaign's whole budget and showed each user the capped impressions again (two workers,
    a budget of 0.25: 0.4 spent)."""
    path = _write(tmp_path, {"campaigns": [ROW]})
    for refuse in (lambda: preflight.check(env, path), lambda: A.Ads.from_env(path, env)):
        with pytest.raises(ValueError) as refused:
            refuse()
        said = str(refused.value)
        assert f"RECASSETS_SERVE_WORKERS={env['RECASSETS_SERVE_WORKERS']}" in said
        assert "set RECASSETS_REDIS_URL" in said and "RECASSETS_SERVE_WORKERS=1" in said


def test_one_worker_a_shared_store_no_campaigns_or_ads_off_pass(tmp_path):
    path = _write(tmp_path, {"campaigns": [ROW]})
    empty = _write(tmp_path, {"campaigns": []}, "empty.json")
    two = {"RECASSETS_SERVE_WORKERS": "2"}
    for env, file in (
        ({"RECASSETS_SERVE_WORKERS": "1"}, path),
        ({**two, "RECASSETS_REDIS_URL": "redis://127.0.0.1:1/0"}, path),
        ({**two, A.STATE_ENV: "redis", "RECASSETS_REDIS_URL": "redis://127.0.0.1:1/0"}, path),
        (two, empty),
        ({**two, "RECASSETS_ADS": "off"}, path),
        (two, None),
    ):
        preflight.check(env, file)
        A.Ads.from_env(file, env)


def test_the_redis_client_never_sends_a_charge_twice():
    """A retried script after a timeout could charge one impression twice: no retries."""
    state = A.Ads.from_env(None, {"RECASSETS_REDIS_URL": "redis://127.0.0.1:1/0"}).state
    assert isinstance(state, A.RedisAdState)
    kwargs = state.client.get_connection_kwargs()
    assert kwargs["retry"] is not None and kwargs["retry"]._retries == 0
    assert not kwargs.get("retry_on_timeout")


# -- numbers no double holds -------------------------------------------------------------------


@pytest.mark.parametrize("field", ["bid", "daily_budget"])
def test_an_integer_past_a_doubles_range_is_a_row_error(tmp_path, field):
    """A 400-digit integer made ``math.isfinite`` raise OverflowError: the whole load failed,
    and with it preflight and the bento build."""
    big = {**ROW, "campaign_id": "big", "item_id": 12, field: 10**400}
    path = _write(tmp_path, {"campaigns": [ROW, big]})
    loaded = A.load_campaigns(path)
    assert [c.campaign_id for c in loaded.campaigns] == ["c1"]
    (error,) = loaded.rejected
    assert (error.row, error.field) == (2, field)
    assert "positive number" in error.message and len(str(error)) < 300
    preflight.check({}, path)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    record = A.bundle_campaigns(path, bundle)
    assert record is not None and (record["campaigns"], record["rejected"]) == (1, 1)


# -- the bundle's copy -------------------------------------------------------------------------


def test_the_bundle_carries_the_bytes_it_validated(tmp_path, monkeypatch):
    """The file was parsed, then copied again from the path: a landing file replaced in
    between went into the bundle unvalidated, its sha256 and counts those of another file."""
    first = {"campaigns": [ROW]}
    path = _write(tmp_path, first)
    validated = path.read_bytes()
    parse = C.parse_campaigns

    def parse_then_replace(obj, name):
        out = parse(obj, name)
        path.write_text(json.dumps({"campaigns": [{**ROW, "bid": 99.0}, {"x": 1}]}))
        return out

    monkeypatch.setattr(C, "parse_campaigns", parse_then_replace)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    record = A.bundle_campaigns(path, bundle)
    assert record is not None
    assert (bundle / A.BUNDLE_FILE).read_bytes() == validated
    assert record["sha256"] == hashlib.sha256(validated).hexdigest()
    assert (record["campaigns"], record["rejected"]) == (1, 0)
