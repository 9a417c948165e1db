"""Headless Chromium (Playwright) against a live server and a real worker: sign up, upload two images,
watch progress reach 100%, compare with the slider, download, find both in history, delete one."""

import os
import time
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.conftest import MODELS_DIR, image_bytes

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
    # Not a skip: `make test` and .ci/run install Debian's chromium, so its absence is a failure.
]


def test_chromium_is_installed():
    assert Path(CHROMIUM).exists(), (
        f"no Chromium at {CHROMIUM}: `make system-deps` installs Debian's chromium"
    )


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30000)
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


def until(page, expression, timeout=30000):
    """Poll a JavaScript expression until it is truthy. page.wait_for_function would eval() the string inside
    the page, which the site's Content-Security-Policy forbids; page.evaluate goes through the debugger."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} ms: {expression}"
        time.sleep(0.1)


def shot(page, name, full_page=True):
    """SCREENSHOTS=folder keeps a picture of each step (for docs/). A full page resizes the window for a
    moment, which the zoom viewer follows: ``full_page=False`` keeps its zoom."""
    if os.environ.get("SCREENSHOTS"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOTS"]) / f"{name}.png"), full_page=full_page)


def sign_up(page, username):
    page.goto("/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", "a-long-secret-7")
    page.fill("#id_password2", "a-long-secret-7")
    page.click("button[type=submit]")
    page.wait_for_selector("#upload")


def test_a_person_upscales_two_images_from_sign_up_to_delete(page, tmp_path):
    sign_up(page, "dora")

    files = []
    for name, size in (
        ("small.png", 48),
        ("large.png", 400),
    ):  # many tiles: still running when its page opens
        (tmp_path / name).write_bytes(image_bytes(size, size))
        files.append(str(tmp_path / name))
    page.set_input_files("input[type=file]", files)
    page.select_option("select[name=scale]", "2")
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#queue li:nth-child(2) a.name")
    shot(page, "1-upload")

    page.click("#queue li:nth-child(2) a.name")  # the larger image: its page shows live progress
    if not (
        MODELS_DIR / "nearest-x2.xml"
    ).exists():  # real EDSR: a 256x256 job takes seconds, so it is still running
        assert page.locator("#live").is_visible()
        shot(page, "2-progress")
    # Playwright's expect polls from its own script world: page.wait_for_function would eval() a string in the
    # page, which the site's Content-Security-Policy forbids.
    expect(page.locator("#percent")).to_have_text("100", timeout=30000)
    page.wait_for_selector("#zoom[data-zoom]")
    page.locator("#slider").fill("30")  # the split moves to 30% of the picture, which is centred
    box = page.locator("#zoom").bounding_box()
    split = page.locator("#split").bounding_box()
    picture = min(box["width"], box["height"])  # a square picture, fitted
    left = box["x"] + (box["width"] - picture) / 2
    assert abs(split["x"] + split["width"] / 2 - (left + 0.3 * picture)) < 3
    shot(page, "3-result")
    with page.expect_download() as download:
        page.click("#download")
    with Image.open(download.value.path()) as im:
        assert im.size == (800, 800)

    page.goto("/jobs/")
    expect(page.locator("tr.job[data-status=done]")).to_have_count(2, timeout=30000)
    assert page.locator("tr.job").count() == 2
    assert page.locator("td.thumb img").count() == 2
    shot(page, "4-history")
    page.locator("tr.job", has_text="small.png").locator("input[type=checkbox]").check()
    page.click("text=Delete selected")
    page.wait_for_selector("text=Deleted 1 job")
    assert page.locator("tr.job").count() == 1 and page.locator("tr.job", has_text="large.png").count() == 1


def test_an_image_dropped_on_the_page_is_upscaled(page):
    import base64

    sign_up(page, "drop")

    # What the browser hands the page when a file from the desktop is dropped on it.
    dropped = page.evaluate_handle(
        """(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
        return data;
    }""",
        base64.b64encode(image_bytes(40, 30)).decode(),
    )
    page.dispatch_event("#drop", "dragenter", {"dataTransfer": dropped})
    assert "over" in page.locator("#drop").get_attribute("class")
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    assert "over" not in (page.locator("#drop").get_attribute("class") or "")
    page.wait_for_selector("#queue li[data-status=ready]")
    assert page.locator("#queue li .name").inner_text() == "dropped.png"
    assert page.locator("#queue li .size").inner_text() == "40×30 → 80×60 px (x2)"

    page.click("#upload button[type=submit]")
    page.wait_for_selector("#queue li[data-status=done] a.name", timeout=60000)
    assert page.locator("#queue li a.name").inner_text() == "dropped.png"


def test_a_person_chooses_the_source_and_the_job_page_shows_the_model_that_ran(page, tmp_path):
    sign_up(page, "erin")
    (tmp_path / "web.jpg").write_bytes(image_bytes(48, 40, "JPEG", quality=60))  # auto would pick JPEG-aware
    page.set_input_files("input[type=file]", str(tmp_path / "web.jpg"))
    page.select_option("select[name=scale]", "2")
    page.select_option("select[name=source]", "clean")
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#queue li[data-status=done] a.name", timeout=60000)
    page.click("#queue li a.name")
    assert page.locator("#model summary").inner_text() == "Upscaled by EDSR, for clean pictures"
    page.click("#model summary")  # the details, for those who want them
    page.wait_for_selector("#model-name")
    shown = page.locator("#model").inner_text()
    assert "Source asked: Clean" in shown and "(clean; asked for clean)" in shown
    assert "_jpeg" not in page.locator("#model-name").inner_text()


def test_a_multi_file_upload_and_the_history_selection_download_all_as_one_zip(page, tmp_path):
    import zipfile

    sign_up(page, "frank")
    files = []
    for name in ("one.png", "two.png"):
        (tmp_path / name).write_bytes(image_bytes(24, 24))
        files.append(str(tmp_path / name))
    page.set_input_files("input[type=file]", files)
    page.select_option("select[name=scale]", "2")
    page.click("#upload button[type=submit]")
    expect(page.locator("#queue li[data-status=done]")).to_have_count(2, timeout=60000)
    with page.expect_download() as download:
        page.click("a.download-all")
    with zipfile.ZipFile(download.value.path()) as z:
        assert sorted(z.namelist()) == ["one-x2.png", "two-x2.png"]

    page.goto("/jobs/")
    page.locator("tr.job", has_text="two.png").locator("input[type=checkbox]").check()
    with page.expect_download() as download:
        page.click("text=Download all")
    with zipfile.ZipFile(download.value.path()) as z:
        assert z.namelist() == ["two-x2.png"]


def upscaled(page, tmp_path, name, width, height):
    """Upload one picture at x2 and wait for its job page to show the result."""
    (tmp_path / name).write_bytes(image_bytes(width, height))
    page.set_input_files("input[type=file]", str(tmp_path / name))
    page.select_option("select[name=scale]", "2")
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#queue li[data-status=done] a.name", timeout=60000)
    url = page.locator("#queue li a.name").get_attribute("href")
    page.goto(url)
    page.wait_for_selector("#zoom[data-zoom]")
    return url


def test_it_fits_every_page_into_a_phone_and_a_desktop_width(page, tmp_path):
    sign_up(page, "gina")
    job = upscaled(page, tmp_path, "a-photo-with-a-rather-long-name-from-a-phone-camera.png", 64, 48)
    signed_in = ["/", "/jobs/", job, "/webhooks/", "/accounts/token/"]
    signed_out = ["/", "/accounts/login/", "/accounts/signup/"]
    too_wide = {}
    for urls, out in ((signed_in, False), (signed_out, True)):
        if out:
            page.click("text=Log out")
            page.wait_for_selector("text=Log in")
        for width in (320, 390, 1280):
            page.set_viewport_size({"width": width, "height": 800})
            for url in urls:
                page.goto(url)
                page.wait_for_load_state("load")
                scroll = page.evaluate("document.documentElement.scrollWidth")
                if scroll > width:
                    too_wide[f"{url} at {width}"] = scroll
                brand = page.locator("header .brand").bounding_box()
                first = page.locator("header nav > *").first.bounding_box()
                overlap = (
                    brand["x"] + brand["width"] > first["x"] and brand["y"] + brand["height"] > first["y"]
                )
                assert not overlap, f"the logo runs into the menu on {url} at {width}"
                label = "job" if url == job else url.strip("/").replace("/", "-") or "home"
                shot(page, f"{width}-{'out' if out else 'in'}-{label}")
    assert too_wide == {}


def test_it_shows_the_full_resolution_result_at_one_to_one_on_double_click(page, tmp_path):
    sign_up(page, "hugo")
    page.set_viewport_size({"width": 480, "height": 800})  # a phone's viewer: the result is wider than it
    tiles = []
    page.on("response", lambda r: tiles.append((r.url, r.status)) if "/tiles/" in r.url else None)
    url = upscaled(page, tmp_path, "wide.png", 300, 225)
    assert page.evaluate("document.getElementById('zoom').dataset.zoom") == "other"
    top = 10  # the DZI level of the 600-pixel-wide result at its full size: ceil(log2(600))

    box = page.locator("#zoom").bounding_box()
    page.mouse.dblclick(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    until(page, "document.getElementById('zoom').dataset.zoom === 'actual'")
    until(page, f"performance.getEntriesByType('resource').some(e => e.name.includes('/tiles/after/{top}/'))")
    # One result pixel per screen pixel, as OpenSeadragon draws it.
    assert abs(float(page.locator("#zoom").get_attribute("data-pixels-per-screen-pixel")) - 1) < 0.02
    assert all(status == 200 for _, status in tiles)
    shot(page, "zoom-1to1", full_page=False)

    page.mouse.dblclick(box["x"] + 10, box["y"] + 10)
    until(page, "document.getElementById('zoom').dataset.zoom === 'other'")

    # The keyboard: + zooms in, 0 fits again.
    ratio = "document.getElementById('zoom').dataset.pixelsPerScreenPixel"
    fitted = page.evaluate(ratio)
    page.focus("#zoom .openseadragon-canvas")
    page.keyboard.press("Equal")
    until(page, f"{ratio} < {fitted}")
    page.keyboard.press("Digit0")
    until(page, f"{ratio} === '{fitted}'")

    # The tiles are the owner's only.
    tile = next(u for u, _ in tiles if "/tiles/after/" in u)
    page.click("text=Log out")
    sign_up(page, "ivan")
    assert page.request.get(tile).status == 404
    assert page.request.get(url).status == 404


def test_it_shows_each_result_on_the_upload_page_as_its_card_finishes(page, tmp_path):
    sign_up(page, "jane")
    polls = []
    page.on("request", lambda r: polls.append(r.url) if "/status" in r.url else None)
    (tmp_path / "first.png").write_bytes(image_bytes(40, 30))
    page.set_input_files("input[type=file]", str(tmp_path / "first.png"))
    page.select_option("select[name=scale]", "2")
    page.click("#upload button[type=submit]")
    (tmp_path / "second.png").write_bytes(image_bytes(30, 20))  # chosen while the first one runs
    page.set_input_files("input[type=file]", str(tmp_path / "second.png"))
    assert page.locator("#queue li.card").count() == 2  # the first card stays
    page.click("#upload button[type=submit]")

    until(
        page,
        "document.querySelectorAll('#queue li[data-status=done] .result img.after').length === 2",
        timeout=60000,
    )
    assert page.url.endswith("/")  # never left the page
    first = page.locator("#queue li.card", has_text="first.png")
    assert "80×60" in first.locator(".state").inner_text()
    until(
        page,
        "Array.from(document.querySelectorAll('.result img.after')).every(i => i.complete && i.naturalWidth > 0)",
    )
    with page.expect_download() as download:
        first.locator("a.get").click()
    with Image.open(download.value.path()) as im:
        assert im.size == (80, 60)
    assert all("/jobs/status?" in u for u in polls)  # one poll for all cards, never one per job
    (tmp_path / "third.png").write_bytes(image_bytes(40, 30))  # now the speed is measured: a guess
    page.set_input_files("input[type=file]", str(tmp_path / "third.png"))
    page.wait_for_selector("#queue li.card:nth-child(3) .state:has-text('done in')")
    shot(page, "upload-cards-1280")
    page.set_viewport_size({"width": 390, "height": 800})
    shot(page, "upload-cards-390")


def test_a_picture_over_the_limits_is_not_uploaded_and_the_page_says_why(page, tmp_path):
    sign_up(page, "kim")
    uploads = []
    page.on("request", lambda r: uploads.append(r.url) if r.method == "POST" else None)
    Image.linear_gradient("L").resize((4000, 3000)).convert("RGB").save(tmp_path / "photo.jpg", quality=50)
    # The tests install only the x2 model; a site with all three offers x3 and x4 as well.
    page.evaluate("""() => { const s = document.querySelector('select[name=scale]');
        for (const v of [3, 4]) s.add(new Option('x' + v, v)); }""")
    page.set_input_files("input[type=file]", str(tmp_path / "photo.jpg"))
    page.select_option("select[name=scale]", "4")
    page.wait_for_selector("#queue li[data-status=refused]")
    said = page.locator("#queue li .size").inner_text()
    assert (
        "192 megapixels" in said and "100 megapixel limit" in said and "largest scale that fits is x2" in said
    )
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#upload-note")
    assert uploads == []
    assert page.locator("label.quality").is_hidden()  # PNG: no quality to choose
    page.select_option("select[name=format]", "jpeg")
    assert page.locator("label.quality").is_visible()
    page.select_option("select[name=scale]", "2")  # the card follows the scale: x2 fits
    page.wait_for_selector("#queue li[data-status=ready]")
    assert "8000×6000" in page.locator("#queue li .size").inner_text()


def test_a_person_asks_for_a_size_and_the_card_says_what_will_run(page, tmp_path):
    from webapp.jobs.models import Job

    sign_up(page, "lee")
    (tmp_path / "p.png").write_bytes(image_bytes(40, 30))
    page.set_input_files("input[type=file]", str(tmp_path / "p.png"))
    assert page.locator("#target").is_hidden()
    page.select_option("select[name=scale]", "target")
    assert page.locator("#target").is_visible()
    page.select_option("select[name=target_side]", "width")
    page.fill("input[name=target_length]", "40")
    page.wait_for_selector("#queue li[data-status=refused]")
    assert "already 40 pixels" in page.locator("#queue li .size").inner_text()
    page.fill("input[name=target_length]", "70")
    page.wait_for_selector("#queue li[data-status=ready]")
    assert page.locator("#queue li .size").inner_text() == "40×30 → x2 then resized to 70×53 px"
    page.click("#upload button[type=submit]")
    until(page, "document.querySelectorAll('#queue li[data-status=done]').length === 1", timeout=60000)
    job = Job.objects.get()
    assert (job.output_width, job.output_height, job.target_side, job.target_pixels) == (70, 53, "width", 70)


def test_a_scale_the_chosen_model_lacks_is_said_before_uploading_and_the_estimate_is_the_models(
    page, tmp_path, settings
):
    import json

    entries = [
        {"scale": 2},
        {"scale": 3},
        {"scale": 2, "network": "rlfn"},
    ]  # as if EDSR had x3 (read as data)
    (tmp_path / "manifest.json").write_text(json.dumps({"models": entries}))
    settings.MODEL_MANIFEST = tmp_path / "manifest.json"
    sign_up(page, "lee")
    posts, estimates = [], []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.on("request", lambda r: estimates.append(r.url) if "/api/v1/estimate" in r.url else None)
    (tmp_path / "a.png").write_bytes(image_bytes(40, 30))
    page.select_option("select[name=network]", "rlfn")
    page.select_option("select[name=scale]", "3")
    page.set_input_files("input[type=file]", str(tmp_path / "a.png"))
    page.wait_for_selector("#queue li[data-status=refused]")
    said = page.locator("#queue li .size").inner_text()
    assert (
        "RLFN has no x3 model; choose x2, or the EDSR network." in said
        and "largest scale that fits is x2" in said
    )
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#upload-note")
    assert posts == []  # nothing uploaded, nothing switched
    page.select_option("select[name=scale]", "2")
    page.wait_for_selector("#queue li[data-status=ready]")
    deadline = time.monotonic() + 10
    while not any("network=rlfn" in u and "scale=2" in u for u in estimates):
        assert time.monotonic() < deadline, estimates
        time.sleep(0.1)
    page.select_option("select[name=network]", "edsr")
    page.select_option("select[name=scale]", "3")
    page.wait_for_selector("#queue li[data-status=ready]")  # EDSR has x3
    assert "120×90" in page.locator("#queue li .size").inner_text()


AXE = Path(__file__).parent / "vendor" / "axe.min.js"  # axe-core 4.14.1 from npm (vendor/VERSION)


def test_axe_finds_no_critical_or_serious_violation_on_the_main_pages(browser, live_server, tmp_path):
    # A context of its own: axe is injected as a script, which a Content-Security-Policy would refuse.
    context = browser.new_context(base_url=live_server.url, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(30000)
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    sign_up(page, "lena")
    job = upscaled(page, tmp_path, "axe.png", 48, 36)
    found = {}
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        for url in ("/", "/jobs/", job):
            page.goto(url)
            page.wait_for_load_state("load")
            page.add_script_tag(content=AXE.read_text())
            violations = page.evaluate(
                """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
                .filter(v => ["critical", "serious"].includes(v.impact))
                .map(v => v.id + ": " + v.nodes.map(n => n.target.join(" ")).join(", "))"""
            )
            if violations:
                found[f"{url} at {width}"] = violations
    context.close()
    assert found == {}
    assert missing == []  # a site icon, and nothing else missing either
