"""Headless Chromium under the site's Content-Security-Policy: the pages and the Swagger UI of the API docs work
and the browser reports no violation."""

import pytest

from tests.browser.test_browser import browser, sign_up  # noqa: F401  (the module's Chromium)
from tests.platform.factories import make_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WATCH = """document.addEventListener("securitypolicyviolation",
  e => (window.__violations = window.__violations || []).push(e.violatedDirective + " " + e.blockedURI));"""


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.add_init_script(WATCH)
    page = context.new_page()
    page.set_default_timeout(30000)
    page.console = []
    page.on("console", lambda m: page.console.append(m.text) if m.type == "error" else None)
    yield page
    context.close()


def violations(page):
    return page.evaluate("window.__violations || []") + [m for m in page.console if "Security Policy" in m]


def test_the_swagger_ui_renders_the_api_under_the_policy(page):
    sign_up(page, "erin")
    page.goto("/api/v1/docs")
    page.wait_for_selector(".opblock-summary-path")  # the operations, drawn from the fetched schema
    assert page.locator(".opblock-summary-path").count() > 5
    assert violations(page) == [], violations(page)


def test_the_pages_work_under_the_policy(page, django_user_model):
    sign_up(page, "fay")
    job = make_job(django_user_model.objects.get(username="fay"), "done")
    for path in ("/", "/jobs/", f"/jobs/{job.id}", "/webhooks/", "/accounts/token/"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
    page.goto(f"/jobs/{job.id}")
    page.wait_for_selector("#zoom[data-zoom]")  # the comparison opened: OpenSeadragon draws on a canvas
    assert page.locator("#zoom canvas").count() > 0
    assert violations(page) == [], violations(page)
