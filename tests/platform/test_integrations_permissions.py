"""Every new URL (webhooks, deliveries, batches, their ZIPs, the selection download): the owner is served,
another user gets 404 (never 403), and an anonymous caller 401 (API) or the login page (site)."""

import pytest
from django.test import override_settings

from tests.platform.factories import make_job
from webapp.integrations import webhooks
from webapp.integrations.models import Batch, Delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(alice):
    with override_settings(WEBHOOKS_ALLOWED_CIDRS=["127.0.0.1/32"]):
        endpoint = webhooks.create_endpoint(alice, "http://127.0.0.1:9/hook")
    delivery = Delivery.objects.create(
        endpoint=endpoint, event_id="msg_1", event_type="job.failed", body="{}"
    )
    batch = Batch.objects.create(owner=alice)
    batch.jobs.add(make_job(alice, "done"))
    return {"endpoint": endpoint.id, "delivery": delivery.id, "batch": batch.id}


API = [
    ("get", "/api/v1/webhooks/{endpoint}/deliveries", 200),
    ("get", "/api/v1/webhooks/{endpoint}/deliveries/{delivery}", 200),
    ("get", "/api/v1/batches/{batch}", 200),
    ("get", "/api/v1/batches/{batch}/download", 200),
    ("delete", "/api/v1/webhooks/{endpoint}", 204),
]


@pytest.mark.parametrize("method,path,ok", API)
def test_the_owner_is_served(alice_api, owned, method, path, ok):
    assert getattr(alice_api, method)(path.format(**owned)).status_code == ok


@pytest.mark.parametrize("method,path,ok", API)
def test_a_stranger_gets_404(bob_api, owned, method, path, ok):
    r = getattr(bob_api, method)(path.format(**owned))
    assert r.status_code == 404 and r.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "method,path",
    [(m, p) for m, p, _ in API]
    + [("get", "/api/v1/webhooks"), ("post", "/api/v1/webhooks"), ("post", "/api/v1/batches")],
)
def test_an_anonymous_caller_gets_401(client, owned, method, path):
    r = getattr(client, method)(path.format(**owned))
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "method,path", [("get", "/webhooks/"), ("post", "/webhooks/{endpoint}/delete"), ("get", "/jobs/download")]
)
def test_an_anonymous_visitor_is_sent_to_log_in(client, owned, method, path):
    r = getattr(client, method)(path.format(**owned))
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
