"""The pictures of the site in docs/ (docs/site.md, README), taken by headless Chromium against a live server and
a real worker, as the browser tests run them. Not collected by `pytest tests` (no test_ prefix): run it with
`make screenshots` (scripts/screenshots.py), which writes docs/<page>-<width>.png at 390 and 1280 px.

Every page is also checked as it is taken: nothing wider than the window (no sideways scroll)."""

import os
from pathlib import Path

import pytest
from PIL import Image

from tests.browser.test_browser import browser, sign_up, until  # noqa: F401  (the module's Chromium)
from tests.conftest import ROOT, image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
OUT = Path(os.environ.get("SCREENSHOTS_OUT", ROOT / "docs"))
WIDTHS = (390, 1280)
HEIGHTS = {390: 844, 1280: 800}  # a phone's window; a laptop's
PHOTOS = ROOT.parent / "shared" / "datasets" / "benchmark"
# The running job: 9 windows of 128 px, each at least 0.5 s, a new partial preview every 0.3 s.
SLOW = {
    "UPSCALE_TILE": "128",
    "UPSCALE_WINDOW_AREA": "0",
    "TEST_TILE_DELAY": "0.5",
    "PARTIAL_PREVIEW_INTERVAL": "0.3",
}


def photo(folder, name, side, fallback):
    """A benchmark photo shrunk to ``side`` pixels on its longer side (a synthetic picture without them)."""
    target = folder / name
    source = next(PHOTOS.glob(f"*/HR/{name}"), None)
    if source is None:
        target.write_bytes(image_bytes(*fallback))
        return str(target)
    with Image.open(source) as im:
        im.thumbnail((side, side), Image.Resampling.LANCZOS)
        im.convert("RGB").save(target)
    return str(target)


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(60000)
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


def take(page, name, width, full_page=True, locator=None):
    """docs/<name>-<width>.png of the page (or of one element) at ``width``; fails on a sideways scroll."""
    page.set_viewport_size({"width": width, "height": HEIGHTS[width]})
    page.wait_for_load_state("networkidle")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{name} is {scroll} px wide at {width}"
    path = str(OUT / f"{name}-{width}.png")
    if locator is not None:
        page.locator(locator).screenshot(path=path)
    else:
        page.screenshot(path=path, full_page=full_page)


def each_width(page, name, url, ready=None, **kwargs):
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": HEIGHTS[width]})
        page.goto(url)
        if ready:
            page.wait_for_selector(ready)
        take(page, name, width, **kwargs)


def test_screenshots(page, tmp_path, start_worker):
    worker = start_worker()
    each_width(page, "login", "/accounts/login/")
    each_width(page, "signup", "/accounts/signup/")
    sign_up(page, "ada")

    # Upload: two photos become cards and then results, on the page.
    files = [
        photo(tmp_path, "monarch.png", 384, (384, 256)),
        photo(tmp_path, "zebra.png", 300, (300, 200)),
    ]
    page.set_input_files("input[type=file]", files)
    page.select_option("select[name=scale]", "2")
    page.click("#upload button[type=submit]")
    until(
        page,
        "document.querySelectorAll('#queue li[data-status=done] .result img.after').length === 2",
        120000,
    )
    until(page, "Array.from(document.querySelectorAll('img')).every(i => i.complete)")
    for width in reversed(WIDTHS):
        take(page, "upload", width)
    job = page.get_attribute("#queue li:nth-child(1) a.name", "href")

    # The job page: the comparison, then 1:1 after a double-click (the viewer alone).
    zoomed = "#zoom[data-zoom]"
    each_width(page, "job-page", job, ready=zoomed)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": HEIGHTS[width]})
        page.goto(job)
        page.wait_for_selector(zoomed)
        page.locator("#zoom").scroll_into_view_if_needed()
        box = page.locator("#zoom").bounding_box()
        page.mouse.dblclick(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.45)
        until(page, "document.getElementById('zoom').dataset.zoom === 'actual'")
        take(page, "job-page-1to1", width, locator="figure.compare")

    each_width(page, "history", "/jobs/")
    each_width(page, "webhooks", "/webhooks/")
    each_width(page, "api-token", "/accounts/token/")

    # A job while it runs: the part already computed (a worker slowed by a setting).
    worker.stop()
    start_worker(**SLOW)
    page.set_viewport_size({"width": 1280, "height": HEIGHTS[1280]})
    page.goto("/")
    page.set_input_files("input[type=file]", photo(tmp_path, "butterfly.png", 300, (300, 300)))
    page.select_option("select[name=scale]", "2")
    page.click("#upload button[type=submit]")
    page.click("#queue li a.name")
    page.wait_for_selector("#partial-figure:not([hidden])")
    until(page, "+document.getElementById('percent').textContent >= 40", 60000)
    for width in reversed(WIDTHS):
        take(page, "job-running", width)
