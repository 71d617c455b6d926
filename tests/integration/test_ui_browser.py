"""The Dagster UI in a real browser, as a data engineer and an auditor use it: headless Chromium
(Debian's ``chromium``, driven through Debian's ``chromium-driver`` by Selenium; nothing
downloads a browser) opens the UI of ``dagster dev`` over a demo home, launches one partition of
``lake/raw_events`` with the Materialize button and its launch dialog, sees the run succeed
(and GraphQL agrees), opens the bento's asset page and finds its lineage facts, and opens the
audit report of the bento it serves. On a failure the page is kept as a screenshot and its
HTML in a folder the message names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.webserver import dagster_dev, graphql
from tests.conftest import TEST_SPARK_CONF, home_at

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# A home `recassets demo` already built, to reuse (copied: the test materializes in it);
# by default the test builds a small one (3 days of 2000 events).
HOME_ENV = "RECASSETS_BROWSER_TEST_HOME"
SPARK_CONF = ",".join(f"{k}={v}" for k, v in TEST_SPARK_CONF.items())
DAY = "2026-01-02"
WAIT_S = 240

if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "no chromium and chromium-driver on PATH (apt-get install -y chromium chromium-driver; "
        ".ci/run installs them)",
        allow_module_level=True,
    )


def env_for(home) -> dict[str, str]:
    env = {
        **os.environ,
        "RECASSETS_HOME": home.home,
        "DAGSTER_HOME": home.dagster_home,
        "RECASSETS_SPARK_CONF": SPARK_CONF,
        "RECASSETS_LANDING_SETTLE_SECONDS": "0",  # nothing is being written: no waiting
    }
    # The real partition rule, not the suite's pinned window (tests/conftest.py).
    env.pop("RECASSETS_START_DATE", None)
    env.pop("RECASSETS_END_DATE", None)
    return env


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui_browser")
    home = home_at(root / "home")
    built = os.environ.get(HOME_ENV)
    if built:
        shutil.copytree(built, home.home, symlinks=True)
        return home
    out = subprocess.run(
        [sys.executable, "-m", "recassets.cli", "demo", "--days", "3", "--events-per-day", "2000"],
        cwd=ROOT, env=env_for(home), capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return home


@pytest.fixture(scope="module")
def ui(home, tmp_path_factory) -> Iterator[int]:
    """``dagster dev`` (webserver and daemon: the UI's runs are queued and the daemon starts
    them) on a free loopback port."""
    log = tmp_path_factory.mktemp("ui_browser_log") / "dagster-dev.log"
    with dagster_dev(ROOT, env_for(home), log) as (port, _):
        yield port


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium and ``shot(name)``, which keeps the page (PNG and HTML) under
    ``tmp_path/screenshots``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1600,1100", f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    shots = tmp_path / "screenshots"
    shots.mkdir()

    def shot(name: str) -> Path:
        driver.save_screenshot(str(shots / f"{name}.png"))
        (shots / f"{name}.html").write_text(driver.page_source)
        return shots

    try:
        yield driver, shot
    finally:
        driver.quit()


@contextmanager
def step(name: str, shot: Callable[[str], Path]) -> Iterator[None]:
    """A step of the walk: on any failure, the page as it was, kept and named."""
    try:
        yield
    except BaseException as exc:
        folder = shot(f"failed-{name}")
        raise AssertionError(f"{name}: {exc!r}; the page is kept in {folder}") from exc


def wait_until(what: str, check: Callable[[], object], timeout_s: float = WAIT_S) -> object:
    deadline = time.time() + timeout_s
    while True:
        try:
            found = check()
        except Exception:  # an element replaced while read (React re-renders), not there yet
            found = None
        if found:
            return found
        if time.time() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s} s")
        time.sleep(1)


def buttons(driver, text: str, exact: bool = True) -> list:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.TAG_NAME, "button")
    return [
        b
        for b in found
        if b.is_displayed()
        and (b.text.strip() == text if exact else b.text.strip().startswith(text))
    ]


def dismiss_the_welcome(driver, wait_s: float = 10) -> None:
    """Skip "Join the Dagster community", which a new browser profile gets a few seconds after
    its first page (it would cover the buttons)."""
    try:
        skip = wait_until("the welcome dialog", lambda: buttons(driver, "Skip"), wait_s)
    except TimeoutError:
        return  # not shown
    skip[0].click()  # type: ignore[index]


def click(driver, element) -> None:
    """``element.click()``, after dismissing Dagster's "Join the Dagster community" dialog if
    it covers the page (a new browser profile gets it once, some seconds after loading)."""
    from selenium.common.exceptions import ElementClickInterceptedException

    for _ in range(3):
        try:
            element.click()
            return
        except ElementClickInterceptedException:
            for skip in buttons(driver, "Skip"):
                skip.click()
            time.sleep(1)
    element.click()


def run_ids(port: int) -> set[str]:
    query = "{ runsOrError(limit: 200) { ... on Runs { results { runId } } } }"
    return {r["runId"] for r in graphql(port, query)["data"]["runsOrError"]["results"]}


def run_of(port: int, run_id: str) -> dict:
    query = (
        f'{{ runOrError(runId: "{run_id}") {{ ... on Run {{ runId status '
        "tags { key value } assetSelection { path } } } }"
    )
    return graphql(port, query)["data"]["runOrError"]


def new_raw_events_run(port: int, before: set[str]) -> dict | None:
    for run_id in run_ids(port) - before:
        run = run_of(port, run_id)
        if {"path": ["lake", "raw_events"]} in (run.get("assetSelection") or []):
            return run
    return None


def test_a_data_engineer_and_an_auditor_in_the_ui(home, ui, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver, shot = browser
    port, base = ui, f"http://127.0.0.1:{ui}"
    before = run_ids(port)

    with step("open-raw-events", shot):
        driver.get(f"{base}/assets/lake/raw_events")
        dismiss_the_welcome(driver)
        materialize = wait_until(
            "the Materialize button", lambda: buttons(driver, "Materialize", exact=False)
        )[0]
        click(driver, materialize)

    with step("choose-one-partition", shot):
        # The launch dialog's partition field ("ex: 2026-01-01, 2026-01-02"), typed into.
        field = wait_until(
            "the partition field of the launch dialog",
            lambda: [
                i
                for i in driver.find_elements(By.CSS_SELECTOR, "[role=dialog] input")
                if (i.get_attribute("placeholder") or "").startswith("ex:") and i.is_displayed()
            ],
        )[0]
        click(driver, field)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys(DAY, Keys.TAB)
        dialog = driver.find_element(By.CSS_SELECTOR, "[role=dialog]")
        wait_until("1 partition selected", lambda: "1 partition" in dialog.text, 30)
        launch = wait_until("Launch 1 run", lambda: buttons(driver, "Launch 1 run"), 30)[0]
        shot("launch-dialog")
        click(driver, launch)

    with step("see-the-run-succeed", shot):
        run = wait_until("the launched run", lambda: new_raw_events_run(port, before), 120)
        assert isinstance(run, dict)
        run_id = run["runId"]
        driver.get(f"{base}/runs/{run_id}")
        wait_until(
            "Success on the run's page",
            lambda: driver.find_elements(By.XPATH, "//*[normalize-space(text())='Success']"),
        )
        run = run_of(port, run_id)  # and GraphQL agrees
        assert run["status"] == "SUCCESS", run
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert tags.get("dagster/partition") == DAY, tags
        shot("run-succeeded")

    manifest = latest_bento_manifest(home)
    with step("bento-lineage", shot):
        driver.get(f"{base}/assets/serving/recommender_bento?view=events")
        sha = manifest["lineage"]["feast"]["registry_sha256"]
        facts = [sha] + [
            manifest["lineage"][k]["sha256"]
            for k in ("two_tower", "ranking")
            if k in manifest["lineage"]
        ]
        wait_until(
            "the bento's sha256 facts on its page",
            lambda: all(f in driver.find_element(By.TAG_NAME, "body").text for f in facts),
            120,
        )
        text = driver.find_element(By.TAG_NAME, "body").text
        assert "recassets lineage recassets_recommender:" in text
        shot("bento")

    with step("audit-report", shot):
        report = tmp_path / "audit.html"
        out = subprocess.run(
            [sys.executable, "-m", "recassets.cli", "audit", "latest", "--out", str(report)],
            cwd=ROOT, env=env_for(home), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        driver.get(report.as_uri())
        tag = manifest_tag(home)
        wait_until(
            "the bento tag in the report",
            lambda: tag in driver.find_element(By.TAG_NAME, "body").text,
            30,
        )
        shot("audit")


def latest_bento_manifest(home) -> dict:
    folder = bento_dir(home)
    return json.loads((folder / "src" / "bundle" / "manifest.json").read_text())


def bento_dir(home) -> Path:
    root = Path(home.home) / "bentoml" / "bentos" / "recassets_recommender"
    versions = sorted(p for p in root.iterdir() if p.is_dir() and p.name != "latest")
    return versions[-1]


def manifest_tag(home) -> str:
    return f"recassets_recommender:{bento_dir(home).name}"
