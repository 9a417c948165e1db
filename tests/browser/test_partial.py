"""Headless Chromium watches a job page while a real worker makes the result: the part already computed shows
(the worker's partial preview, swapped in as new ones are stored), then the comparison replaces it. The job
is slowed by a setting (TEST_TILE_DELAY), not raced with sleeps."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_browser import browser, page, sign_up, until  # noqa: F401  (the module's Chromium)
from tests.conftest import image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# 300x300 x2 in 128-pixel windows: 9 windows of at least 0.6 s each; a new preview every 0.3 s.
SLOW = {
    "UPSCALE_TILE": "128",
    "UPSCALE_WINDOW_AREA": "0",  # the tiles only, not one window fitted to the picture
    "TEST_TILE_DELAY": "0.6",
    "PARTIAL_PREVIEW_INTERVAL": "0.3",
    "FANOUT_MIN_MEGAPIXELS": "1000",
}


def test_it_shows_the_part_already_computed_while_the_job_runs(page, tmp_path, start_worker):
    start_worker(**SLOW)
    sign_up(page, "paula")
    (tmp_path / "slow.png").write_bytes(image_bytes(300, 300))
    page.set_input_files("input[type=file]", str(tmp_path / "slow.png"))
    page.select_option("select[name=scale]", "2")
    page.click("#upload button[type=submit]")
    page.click("#queue li a.name")

    page.wait_for_selector("#partial-figure:not([hidden])", timeout=60000)
    assert page.locator("#status").text_content() == "running"  # seen before the result
    first = page.get_attribute("#partial", "src")
    assert page.evaluate("document.getElementById('partial').naturalWidth") == 600  # decoded, whole
    until(page, f"document.getElementById('partial').getAttribute('src') !== {first!r}", 60000)  # a newer one
    assert page.evaluate("document.getElementById('partial').naturalWidth") == 600

    expect(page.locator("#percent")).to_have_text("100", timeout=60000)
    page.wait_for_selector("#zoom[data-zoom]")  # the comparison, after the reload
    assert page.locator("#partial-figure").count() == 0 or page.locator("#partial-figure").is_hidden()
