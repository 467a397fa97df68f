"""The dashboard end to end: a real ``prefect server``, ``mmdiff serve``, headless Chromium filling the run form.

Needs Debian's ``chromium`` and ``chromium-driver`` (installed by ``make browser-deps``, which CI runs)
and the ``selenium`` package. Skipped where they are missing, except under CI, where that fails.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.dashboard import ROOT, server_env, start_server, stop, wait_healthy
from flows.image.launch import free_port
from flows.image.tasks import shard_seed

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--window-size=1400,1000")


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python package selenium")
    if missing:
        message = f"browser test needs {missing}: run `make browser-deps`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _api(port: int, path: str, body: dict | None = None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api{path}", method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def _wait(predicate, timeout: float, what: str, interval: float = 1.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture()
def dashboard(tmp_path, tiny_checkpoint):
    """A Prefect server on a free port and ``mmdiff serve`` registered against it; both stopped afterwards."""
    _require_browser()
    port = free_port()
    home, out = tmp_path / "prefect-home", tmp_path / "outputs"
    server = start_server(port, home=str(home), log=tmp_path / "server.log")
    procs = [server]
    try:
        wait_healthy(port, timeout=180, proc=server)
        serve_log = open(tmp_path / "serve.log", "wb")
        command = [sys.executable, "-m", "mmdiff", "serve", "--checkpoint", f"image={tiny_checkpoint}",
                   "--output-root", str(out), "--no-schedules"]
        env = {**server_env(port, str(home)), "OMP_NUM_THREADS": "1"}
        serve = subprocess.Popen(command, cwd=ROOT, env=env, stdout=serve_log, stderr=subprocess.STDOUT)
        procs.append(serve)
        yield port, out, tmp_path
    finally:
        for proc in reversed(procs):
            stop(proc)


def test_start_generate_image_from_the_form(dashboard, tiny_checkpoint):
    from selenium import webdriver
    from selenium.common.exceptions import ElementClickInterceptedException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    port, out, logs = dashboard
    base = f"http://127.0.0.1:{port}"
    deployment = _wait(lambda: next((d for d in _api(port, "/deployments/filter", {}) if d["name"] == "generate-image"),
                                    None), 120, "mmdiff serve to register generate-image")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(f"{base}/deployments")
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.LINK_TEXT, "generate-image"))
        driver.find_element(By.LINK_TEXT, "generate-image").click()
        WebDriverWait(driver, 30).until(lambda d: deployment["id"] in d.current_url)
        def runs():
            return _api(port, "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment["id"]]}}})

        def fill_form() -> None:
            driver.get(f"{base}/deployments/deployment/{deployment['id']}/run")
            for label, value in (("Seed", "5"), ("Num Inference Steps", "3")):
                xpath = (f"//span[@class='schema-form-property__label' and starts-with(normalize-space(.), '{label}')]"
                         "/ancestor::div[contains(concat(' ', normalize-space(@class), ' '), ' schema-form-property ')]"
                         "[1]//input")
                field = WebDriverWait(driver, 60).until(lambda d: d.find_element(By.XPATH, xpath))
                driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
                field.send_keys(Keys.CONTROL, "a")
                field.send_keys(value)
                assert field.get_attribute("value") == value

        # A click can land while the form is still re-rendering and do nothing, hit a popover left open
        # by a field (closed with Escape, as a user would), or the page can show "Something went wrong"
        # under load; a user would reload the form and submit again. At most three attempts, each on a
        # freshly loaded form, until the server holds the run; then fail with what the page shows.
        for attempt in range(3):
            fill_form()
            submit = WebDriverWait(driver, 30).until(
                lambda d: d.find_element(By.XPATH, "//button[normalize-space(.)='Submit']"))
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", submit)
            try:
                submit.click()
            except ElementClickInterceptedException:
                driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
                time.sleep(1)
                continue
            try:
                _wait(runs, 20, "the run submitted from the form", interval=1)
                print(f"the form created the run on attempt {attempt + 1}")
                break
            except TimeoutError:
                print(f"attempt {attempt + 1}: no run; the page shows: "
                      + driver.find_element(By.TAG_NAME, "body").text[-300:].replace("\n", " | "))
        else:
            console = [e.get("message", "") for e in driver.get_log("browser")][-20:]
            raise AssertionError("the form did not create a run; the browser console: " + "\n".join(console)
                                 + "\nthe page shows: " + driver.find_element(By.TAG_NAME, "body").text[-600:])

        def finished_run():
            return next((r for r in runs() if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED")), None)

        run = _wait(finished_run, 240, "the flow run started from the form to finish", interval=2)
        assert run["state_type"] == "COMPLETED", (logs / "serve.log").read_text()[-3000:]
        assert run["parameters"]["params"]["seed"] == 5 and run["parameters"]["params"]["num_inference_steps"] == 3
        driver.get(f"{base}/runs/flow-run/{run['id']}")
        WebDriverWait(driver, 60).until(lambda d: "Completed" in d.page_source)
    finally:
        driver.quit()
    run_dirs = list(out.glob("*-generate-image-*"))
    assert len(run_dirs) == 1 and (run_dirs[0] / "index.html").is_file()
    pngs = sorted((run_dirs[0] / "images").glob("*.png"))
    assert len(pngs) == 10
    from generators.image import ImageGenerator

    direct = ImageGenerator.from_pretrained(tiny_checkpoint)(list(range(10)), num_inference_steps=3, seed=shard_seed(5, 0))
    for png, expected in zip(pngs, direct.images):
        assert np.array_equal(np.asarray(Image.open(png)), expected[..., 0])
