"""The dashboard in headless Chromium: it loads clean, draws events and spikes, stops a pipeline.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser``) and selenium
(the dev extra); skips with the reason when they are missing. The screenshot
goes to ``test-artifacts/dashboard.png``.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from spikegate.service.app import GATEWAY, init
from spikegate.service.config import DemoSourceConfig, PipelineConfig, ServerConfig, Settings
from tests.conftest import eventually

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOKEN = "dashboard-token"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1200,900"]


def _missing() -> str | None:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        return "headless Chromium not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[dev]')"
    return None


pytestmark = [pytest.mark.skipif(_missing() is not None, reason=_missing() or ""),
              pytest.mark.slow]


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="spikegate-chromium-")
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


async def wait_in_browser(driver: Any, condition: Callable[[Any], Any], what: str,
                          timeout_s: float = 30.0) -> Any:
    """Poll ``condition(driver)`` in a thread (the server keeps serving) until it is truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await asyncio.to_thread(condition, driver)
        if value:
            print(f"{what}: {timeout_s - (deadline - time.monotonic()):.1f}s")  # DEBUGTIMING
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.2)


LIT_PIXELS = """
const c = document.querySelector(arguments[0]);
if (!c || !c.width) return -1;
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 40) n++;
return n;
"""


async def test_dashboard_draws_events_and_spikes_and_stops_a_pipeline(browser: Any) -> None:
    source = DemoSourceConfig(rate_ev_s=100_000, packet_us=5_000)
    settings = Settings(server=ServerConfig(api_token=SecretStr(TOKEN)),
                        pipelines=[PipelineConfig(source=source, command_interval_ms=20)])
    app = init(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await app[GATEWAY].wait_ready()
        pipeline = app[GATEWAY].pipelines["demo"]
        await asyncio.to_thread(browser.get, f"http://127.0.0.1:{port}/")

        def stats(driver: Any) -> dict[str, int]:
            return driver.execute_script("return window.spikegateDashboard || null;") or {}

        await wait_in_browser(browser, lambda d: stats(d).get("eventFrames", 0) > 10,
                              "event frames in the page")
        lit = await wait_in_browser(
            browser, lambda d: max(d.execute_script(LIT_PIXELS, "canvas.events"), 0),
            "the event view to draw pixels")
        assert lit > 0
        await wait_in_browser(browser, lambda d: stats(d).get("spikeFrames", 0) > 10,
                              "spike frames in the page")
        await wait_in_browser(
            browser, lambda d: max(d.execute_script(LIT_PIXELS, "canvas.raster"), 0),
            "the raster to draw spikes")
        first = await asyncio.to_thread(
            browser.execute_script, "return document.querySelector('canvas.raster').toDataURL()")
        await wait_in_browser(
            browser, lambda d: d.execute_script(
                "return document.querySelector('canvas.raster').toDataURL()") != first,
            "the raster to change")
        figures = await asyncio.to_thread(
            browser.execute_script, "return document.querySelector('table.figures').innerText")
        assert "events in / s" in figures and "drops" in figures

        ARTIFACTS.mkdir(exist_ok=True)
        await asyncio.to_thread(browser.save_screenshot, str(ARTIFACTS / "dashboard.png"))

        # stop without a token: refused with the server's sentence, still running
        stop = "section[data-pipeline='demo'] button[data-action='stop']"
        await asyncio.to_thread(lambda: browser.find_element("css selector", stop).click())
        await wait_in_browser(browser, lambda d: "token" in d.find_element(
            "id", "message").text, "the refusal to show")
        assert pipeline.state == "running"

        def type_token_and_stop(driver: Any) -> None:
            field = driver.find_element("id", "token")
            field.send_keys(TOKEN + "\t")
            driver.find_element("css selector", stop).click()

        await asyncio.to_thread(type_token_and_stop, browser)
        await eventually(lambda: pipeline.state == "stopped", what="the pipeline to stop")
        assert app[GATEWAY].status()["pipelines"][0]["state"] == "stopped"
        await wait_in_browser(browser, lambda d: d.find_element(
            "css selector", "section[data-pipeline='demo'] .badge").text == "stopped",
            "the page to show the stop")

        logs = await asyncio.to_thread(browser.get_log, "browser")
        errors = [e for e in logs if e["level"] == "SEVERE"
                  and "api/v1/pipelines/demo/stop" not in e["message"]]  # the deliberate 401
        assert errors == [], errors
    finally:
        await runner.cleanup()
