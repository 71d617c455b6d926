"""Settings read from the environment refuse a bad value naming the variable (before: a bare
``int()``/``float()`` error, NaN or a negative band accepted until a check ran after the
ingestion, ``RECASSETS_ADS=maybe`` leaving ads on in silence, a 0 limit refusing every
request)."""

from __future__ import annotations

import pytest

from recassets.bento.guard import Guard
from recassets.funnel.ads import AdsConfig
from recassets.quality.checks import parse_volume_band
from recassets.training.distributed import processes_from_env


@pytest.mark.parametrize("raw", ["abc", "nan", "-1", "inf"])
def test_a_volume_band_that_is_no_fraction_is_refused(raw):
    with pytest.raises(ValueError, match=f"RECASSETS_VOLUME_BAND='{raw}'"):
        parse_volume_band(raw)


def test_a_volume_band_reads_fractions_off_and_the_default():
    assert parse_volume_band("0.5") == 0.5 and parse_volume_band("0") == 0.0
    assert parse_volume_band("off") is None and parse_volume_band("") == parse_volume_band(None)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"RECASSETS_ADS": "maybe"}, "RECASSETS_ADS='maybe'"),
        ({"RECASSETS_ADS_RESERVE": "abc"}, "RECASSETS_ADS_RESERVE='abc': expected float"),
        ({"RECASSETS_ADS_SLOTS": "3,x"}, "RECASSETS_ADS_SLOTS='x': expected int"),
        ({"RECASSETS_ADS_FREQUENCY_CAP": "1.5"}, "RECASSETS_ADS_FREQUENCY_CAP='1.5'"),
    ],
)
def test_an_ads_setting_that_does_not_parse_names_its_variable(env, says):
    with pytest.raises(ValueError, match=says):
        AdsConfig.from_mapping(env)


def test_ads_settings_that_parse():
    assert AdsConfig.from_mapping({"RECASSETS_ADS": "off"}).enabled is False
    config = AdsConfig.from_mapping({"RECASSETS_ADS": "yes", "RECASSETS_ADS_SLOTS": "2, 5"})
    assert config.enabled and config.slots == (2, 5)


def test_train_processes_names_its_variable():
    with pytest.raises(ValueError, match="RECASSETS_TRAIN_PROCESSES='abc'"):
        processes_from_env({"RECASSETS_TRAIN_PROCESSES": "abc"})
    assert processes_from_env({"RECASSETS_TRAIN_PROCESSES": "2"}) == 2


@pytest.mark.parametrize(("raw", "says"), [("0", "expected at least 1"), ("abc", "an integer")])
def test_a_body_limit_that_would_refuse_every_request_is_refused(monkeypatch, raw, says):
    monkeypatch.setenv("RECASSETS_SERVE_MAX_BODY_BYTES", raw)
    with pytest.raises(ValueError, match=f"RECASSETS_SERVE_MAX_BODY_BYTES=.*{says}"):
        Guard(None)
    monkeypatch.setenv("RECASSETS_SERVE_MAX_BODY_BYTES", "1024")
    assert Guard(None).max_body == 1024
