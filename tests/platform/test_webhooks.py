"""Webhooks signed per Standard Webhooks: the delivery row written with the status change, a sender process
(`-Q webhooks --pool threads`) that retries, signatures checked by the `standardwebhooks` reference library,
and the defences against server-side request forgery."""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.conftest import upload_file
from tests.platform.factories import make_job
from webapp.integrations import webhooks
from webapp.integrations.models import Delivery, WebhookEndpoint

pytestmark = pytest.mark.django_db(transaction=True)
LOOPBACK = override_settings(WEBHOOKS_ALLOWED_CIDRS=["127.0.0.1/32"])
SENDER_ENV = {
    "WEBHOOKS_ALLOWED_CIDRS": "127.0.0.1/32",
    "WEBHOOK_RETRY_DELAYS": "0.1,0.2,0.3",
    "SITE_URL": "https://upscale.example.org",
}


class Receiver:
    """An HTTP server on loopback that answers each POST with the next of ``answers`` (the last repeats)."""

    def __init__(self, answers=(200,), delay=0.0, headers=None):
        self.requests, receiver = [], self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    (self.path, {k.lower(): v for k, v in self.headers.items()}, body.decode())
                )
                time.sleep(delay)
                self.send_response(answers[min(len(receiver.requests), len(answers)) - 1])
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(*args, **kwargs):
        made.append(Receiver(*args, **kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def sender(start_worker):
    return start_worker(queue="webhooks", pool="threads", concurrency=4, **SENDER_ENV)


def wait_delivery(status=("succeeded", "failed"), timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        done = list(Delivery.objects.filter(status__in=status))
        if done:
            return done[0]
        assert time.monotonic() < deadline, list(Delivery.objects.values("status", "attempts", "last_error"))
        time.sleep(0.05)


@LOOPBACK
def test_it_creates_lists_and_deletes_endpoints_showing_the_secret_once(alice_api):
    r = alice_api.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook"}, format="json")
    assert r.status_code == 201, r.content
    created = r.json()
    assert created["secret"].startswith("whsec_") and len(base64.b64decode(created["secret"][6:])) == 24
    assert created["events"] == ["job.succeeded", "job.failed", "job.cancelled"]
    listed = alice_api.get("/api/v1/webhooks").json()
    assert [e["id"] for e in listed] == [created["id"]] and "secret" not in listed[0]
    assert alice_api.delete(f"/api/v1/webhooks/{created['id']}").status_code == 204
    assert not WebhookEndpoint.objects.exists()


@LOOPBACK
def test_a_stranger_gets_404_for_an_endpoint_and_its_deliveries(alice, alice_api, bob_api):
    endpoint = webhooks.create_endpoint(alice, "http://127.0.0.1:9/hook")
    delivery = Delivery.objects.create(
        endpoint=endpoint, event_id="msg_1", event_type="job.failed", body="{}"
    )
    base = f"/api/v1/webhooks/{endpoint.id}"
    assert alice_api.get(f"{base}/deliveries").json()[0]["id"] == str(delivery.id)
    assert alice_api.get(f"{base}/deliveries/{delivery.id}").json()["webhook_id"] == "msg_1"
    for r in (
        bob_api.get(f"{base}/deliveries"),
        bob_api.get(f"{base}/deliveries/{delivery.id}"),
        bob_api.delete(base),
        alice_api.get(f"{base}/deliveries/not-an-id"),
    ):
        assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert bob_api.get("/api/v1/webhooks").json() == []
    assert WebhookEndpoint.objects.filter(pk=endpoint.id).exists()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "file:///etc/passwd",
        "http://10.0.0.1/hook",
        "http://127.0.0.1/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://192.168.1.1/hook",
        "http://user:pw@8.8.8.8/hook",
    ],
)
def test_it_refuses_endpoints_that_would_reach_inside(alice_api, url):
    r = alice_api.post("/api/v1/webhooks", {"url": url}, format="json")
    assert r.status_code == 400 and r.json()["code"] in ("unsafe_url", "invalid"), r.content
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "form, inside, outside",
    [
        ("mapped", "::ffff:127.0.0.1", "::ffff:8.8.8.8"),
        ("mapped", "::ffff:169.254.169.254", "::ffff:1.1.1.1"),
        ("compatible", "::127.0.0.1", "::8.8.8.8"),
        ("compatible", "::a9fe:a9fe", "::808:808"),  # 169.254.169.254 written in hex
        ("NAT64", "64:ff9b::127.0.0.1", "64:ff9b::8.8.8.8"),
        ("NAT64", "64:ff9b::a9fe:a9fe", "64:ff9b::101:101"),
        ("6to4", "2002:7f00:1::1", "2002:808:808::1"),
        ("6to4", "2002:a9fe:a9fe::", "2002:101:101::"),
        # Teredo: server 65.54.227.120, client (stored inverted in the last 32 bits) 127.0.0.1 / 8.8.8.8.
        ("Teredo", "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:4136:e378:8000:63bf:f7f7:f7f7"),
        ("Teredo server", "2001:0:a9fe:a9fe:8000:63bf:f7f7:f7f7", "2001:0:4136:e378:8000:63bf:f7f7:f7f7"),
    ],
)
def test_an_ipv6_address_carrying_an_ipv4_one_is_judged_by_the_ipv4_one(alice_api, form, inside, outside):
    import ipaddress

    from webapp.integrations.safe_http import Unsafe, check_address

    with pytest.raises(Unsafe, match="carries"):
        check_address(ipaddress.ip_address(inside))
    check_address(ipaddress.ip_address(outside))  # a public IPv4 host behind the same form passes
    r = alice_api.post("/api/v1/webhooks", {"url": f"http://[{inside}]/hook"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "unsafe_url", r.content
    assert not WebhookEndpoint.objects.exists()


def test_the_sender_refuses_an_address_that_became_private(alice, receiver):
    target = receiver()
    with LOOPBACK:
        endpoint = webhooks.create_endpoint(alice, target.url)
    delivery = Delivery.objects.create(
        endpoint=endpoint, event_id="msg_1", event_type="job.failed", body="{}"
    )
    with override_settings(WEBHOOK_RETRY_DELAYS=[]):
        assert webhooks.deliver(delivery.id) == "failed"
    delivery.refresh_from_db()
    assert "not a public address" in delivery.last_error and target.requests == []


@LOOPBACK
@override_settings(WEBHOOK_RETRY_DELAYS=[])
def test_it_follows_no_redirect(alice, receiver):
    elsewhere = receiver()
    redirecting = receiver(answers=(302,), headers={"Location": elsewhere.url})
    endpoint = webhooks.create_endpoint(alice, redirecting.url)
    delivery = Delivery.objects.create(
        endpoint=endpoint, event_id="msg_1", event_type="job.failed", body="{}"
    )
    assert webhooks.deliver(delivery.id) == "failed"
    delivery.refresh_from_db()
    assert delivery.last_status_code == 302 and len(redirecting.requests) == 1 and elsewhere.requests == []


@LOOPBACK
@override_settings(WEBHOOK_RETRY_DELAYS=[], WEBHOOK_TIMEOUT=0.3)
def test_a_slow_endpoint_is_a_failed_attempt(alice, receiver):
    slow = receiver(delay=2)
    endpoint = webhooks.create_endpoint(alice, slow.url)
    delivery = Delivery.objects.create(
        endpoint=endpoint, event_id="msg_1", event_type="job.failed", body="{}"
    )
    started = time.monotonic()
    assert webhooks.deliver(delivery.id) == "failed"
    assert time.monotonic() - started < 1.5
    delivery.refresh_from_db()
    assert "Timeout" in delivery.last_error or "timed out" in delivery.last_error


def test_a_cancelled_job_is_delivered_signed_and_retried_until_it_succeeds(
    alice, alice_api, receiver, sender
):
    target = receiver(answers=(500, 503, 200))
    with LOOPBACK:
        secret = alice_api.post(
            "/api/v1/webhooks", {"url": target.url, "events": ["job.cancelled"]}, format="json"
        ).json()["secret"]
    job = make_job(alice)
    with override_settings(
        SITE_URL=SENDER_ENV["SITE_URL"]
    ):  # the event is written where the job is cancelled
        assert alice_api.post(f"/api/v1/jobs/{job.id}/cancel").status_code == 200
    assert Delivery.objects.count() == 1  # written with the status change

    delivery = wait_delivery()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    assert len(target.requests) == 3
    ids = {headers["webhook-id"] for _, headers, _ in target.requests}
    assert ids == {delivery.event_id}  # the receiver's dedupe key, the same on every retry
    for _, headers, body in target.requests:
        verified = Webhook(secret).verify(body, headers)
        assert verified["type"] == "job.cancelled" and verified["data"]["id"] == str(job.id)
        assert verified["data"]["status"] == "cancelled"
        assert verified["data"]["url"] == f"https://upscale.example.org/jobs/{job.id}"
        assert set(verified["data"]) == set(
            alice_api.get(f"/api/v1/jobs/{job.id}").json()
        )  # the job as GET gives it
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)


def test_a_finished_job_is_delivered_and_a_failing_endpoint_ends_failed(
    alice, alice_api, receiver, sender, start_worker
):
    start_worker(SITE_URL=SENDER_ENV["SITE_URL"])  # the upscale worker writes the event where the job ends
    good, bad = receiver(), receiver(answers=(500,))
    with LOOPBACK:
        for url in (good.url, bad.url):
            assert alice_api.post("/api/v1/webhooks", {"url": url}, format="json").status_code == 201
    r = alice_api.post("/api/v1/jobs", {"image": upload_file(), "scale": 2}, format="multipart")
    assert r.status_code == 201
    deadline = time.monotonic() + 60
    while Delivery.objects.exclude(status="pending").count() < 2:
        assert time.monotonic() < deadline, list(Delivery.objects.values("status", "attempts", "last_error"))
        time.sleep(0.1)
    by_url = {d.endpoint.url: d for d in Delivery.objects.select_related("endpoint")}
    assert by_url[good.url].status == "succeeded" and by_url[good.url].attempts == 1
    assert by_url[bad.url].status == "failed" and by_url[bad.url].attempts == 4  # 1 + 3 retry delays
    body = json.loads(good.requests[0][2])
    assert body["type"] == "job.succeeded" and body["data"]["status"] == "done"
    assert body["data"]["result_url"] == f"https://upscale.example.org/api/v1/jobs/{r.json()['id']}/result"
    assert by_url[good.url].event_id == by_url[bad.url].event_id  # one event, one delivery per endpoint


@LOOPBACK
def test_the_page_adds_an_endpoint_and_shows_its_deliveries(alice, alice_web, client, bob):
    r = alice_web.post("/webhooks/", {"url": "http://127.0.0.1:9/hook", "events": ["job.failed"]})
    endpoint = WebhookEndpoint.objects.get()
    assert (
        r.status_code == 200 and endpoint.secret in r.content.decode() and endpoint.events == ["job.failed"]
    )
    Delivery.objects.create(
        endpoint=endpoint, event_id="msg_page", event_type="job.failed", body="{}", last_status_code=503
    )
    page = alice_web.get("/webhooks/").content.decode()
    assert "msg_page" in page and "503" in page and endpoint.secret not in page
    client.force_login(bob)
    assert client.post(f"/webhooks/{endpoint.id}/delete").status_code == 404
    assert "127.0.0.1:9" not in client.get("/webhooks/").content.decode()
    client.force_login(alice)
    assert client.post(f"/webhooks/{endpoint.id}/delete").status_code == 302
    assert not WebhookEndpoint.objects.exists()


@LOOPBACK
def test_the_delivery_row_commits_or_rolls_back_with_the_status_change(alice):
    from django.db import transaction

    from webapp.jobs.services import web

    webhooks.create_endpoint(alice, "http://127.0.0.1:9/hook")
    job = make_job(alice)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert web.cancel(job)
        assert Delivery.objects.count() == 1
        raise RuntimeError("the surrounding transaction fails")
    job.refresh_from_db()
    assert job.status == "queued" and not Delivery.objects.exists()
    assert web.cancel(job) and Delivery.objects.get().event_type == "job.cancelled"
    assert not web.cancel(job) and Delivery.objects.count() == 1  # no change, no event


def make_certificates(folder, host):
    """A CA and a server certificate for ``host`` signed by it (PEM files): (ca.pem, server.pem, server.key)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test CA"))
        .issuer_name(name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(host))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.mark.parametrize("cert_host,outcome", [("localhost", "succeeded"), ("elsewhere.example", "failed")])
@override_settings(WEBHOOKS_ALLOWED_CIDRS=["127.0.0.1/32", "::1/128"], WEBHOOK_RETRY_DELAYS=[])
def test_https_sends_sni_and_checks_the_certificate_against_the_host_name(
    alice, receiver, tmp_path, monkeypatch, cert_host, outcome
):
    import ssl

    ca, cert, key = make_certificates(tmp_path, cert_host)
    target, names = receiver(), []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, server_name, ctx: names.append(server_name)
    target.server.socket = context.wrap_socket(target.server.socket, server_side=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # trust the test CA, as the system store would a real one
    url = target.url.replace("http://127.0.0.1", "https://localhost")
    endpoint = webhooks.create_endpoint(alice, url)
    delivery = Delivery.objects.create(
        endpoint=endpoint, event_id="msg_tls", event_type="job.failed", body="{}"
    )
    assert webhooks.deliver(delivery.id) == outcome
    delivery.refresh_from_db()
    assert names == ["localhost"]  # SNI names the host although the connection goes to the resolved address
    if outcome == "failed":
        assert "hostname 'localhost' doesn't match" in delivery.last_error and target.requests == []
    else:
        assert len(target.requests) == 1


@LOOPBACK
@override_settings(WEBHOOK_RETRY_DELAYS=[2, 3600], WEBHOOK_COUNTDOWN_MAX=300)
def test_a_short_wait_is_a_countdown_and_a_long_one_is_left_to_the_sweeper(alice, receiver, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    published = []
    monkeypatch.setattr(webhooks, "publish", lambda i, countdown=None: published.append((i, countdown)))
    endpoint = webhooks.create_endpoint(alice, receiver(answers=(500,)).url)
    delivery = Delivery.objects.create(
        endpoint=endpoint, event_id="msg_1", event_type="job.failed", body="{}"
    )
    assert webhooks.deliver(delivery.id) == "pending" and published == [(delivery.id, 2)]
    Delivery.objects.update(next_attempt_at=timezone.now())
    assert webhooks.deliver(delivery.id) == "pending" and len(published) == 1  # 3600 s: no countdown
    delivery.refresh_from_db()
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=3500)
    assert webhooks.sweep() == 0
    Delivery.objects.update(next_attempt_at=timezone.now())
    assert webhooks.sweep() == 1 and published[-1] == (delivery.id, None)
    assert webhooks.deliver(delivery.id) == "failed"
