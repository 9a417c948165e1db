"""Webhooks signed per Standard Webhooks (https://www.standardwebhooks.com/): the events a job's status change
writes (in the same transaction), and the sender that delivers them with retries.

A delivery's body is fixed when the event happens; each attempt signs ``{webhook-id}.{webhook-timestamp}.{body}``
with HMAC-SHA256 under the endpoint's secret (the ``standardwebhooks`` reference library does the signing),
so a receiver verifies it with any of the specification's libraries and dedupes on ``webhook-id``.
"""

import base64
import json
import logging
import secrets
import uuid
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from webapp.integrations import safe_http
from webapp.integrations.models import EVENTS, Delivery, WebhookEndpoint

log = logging.getLogger(__name__)
TASK = "webapp.integrations.tasks.deliver"
EVENT_OF_STATUS = {"done": "job.succeeded", "failed": "job.failed", "cancelled": "job.cancelled"}
CLAIM_SECONDS = 60  # a claimed attempt's lease: longer than the 10 s request, short enough to resume quickly


def new_secret():
    """``whsec_`` + base64 of 24 random bytes, the specification's secret format."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def create_endpoint(owner, url, events=None):
    """Check the URL (http/https, a public address unless allowed) and store the endpoint; raises safe_http.Unsafe."""
    safe_http.resolve(url)
    return WebhookEndpoint.objects.create(
        owner=owner, url=url, events=list(events or EVENTS), secret=new_secret()
    )


def on_job_finished(sender, job_id, status, **kwargs):
    """Receiver of jobs' ``job_finished``, inside the status change's transaction: one delivery row per
    subscribed endpoint, published once the transaction commits."""
    from webapp.jobs.models import Job

    event_type = EVENT_OF_STATUS[status]
    # One query when the owner has no endpoint (most jobs): the job is read only for an event to send.
    endpoints = [e for e in WebhookEndpoint.objects.filter(owner__jobs__pk=job_id) if event_type in e.events]
    if not endpoints:
        return
    job = Job.objects.get(pk=job_id)
    now = timezone.now()
    body = json.dumps(
        {"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": job_payload(job)},
        separators=(",", ":"),
    )
    event_id = f"msg_{uuid.uuid4().hex}"
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            endpoint=e,
            event_id=event_id,
            event_type=event_type,
            job_id=job.pk,
            body=body,
            next_attempt_at=now,
        )
        for e in endpoints
    )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: [publish(i) for i in ids])


def job_payload(job):
    """The job as GET /api/v1/jobs/<id> returns it, with absolute URLs under SITE_URL."""
    from webapp.jobs.serializers import JobSerializer

    return JobSerializer(job, context={"site_url": settings.SITE_URL}).data


def publish(delivery_id, countdown=None):
    try:
        current_app.send_task(
            TASK, args=[str(delivery_id)], queue="webhooks", countdown=countdown, retry=False
        )
    except Exception as e:  # the broker is down: the sweeper sends what is due
        log.warning("could not publish delivery %s: %s", delivery_id, e)


def headers(delivery, secret):
    """The Standard Webhooks headers of one attempt, signed now."""
    from standardwebhooks import Webhook

    now = timezone.now()
    return {
        "Content-Type": "application/json",
        "User-Agent": f"{settings.SITE_NAME}-Webhooks",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery.event_id, now, delivery.body),
    }


def claim(delivery_id):
    """Take a due pending delivery for one attempt (a conditional UPDATE, so duplicates of its message and the
    sweeper never send it twice at once). Returns the Delivery or None."""
    now = timezone.now()
    taken = Delivery.objects.filter(
        pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS), attempts=F("attempts") + 1)
    return Delivery.objects.select_related("endpoint").get(pk=delivery_id) if taken else None


def deliver(delivery_id):
    """One attempt: a 2xx within the timeout succeeds; anything else waits WEBHOOK_RETRY_DELAYS[attempt - 1]
    and, past the last delay, fails. Returns the delivery's status."""
    delivery = claim(delivery_id)
    if delivery is None:
        return "skipped"
    code, error = None, ""
    try:
        code = safe_http.post(
            delivery.endpoint.url,
            delivery.body.encode(),
            headers(delivery, delivery.endpoint.secret),
            timeout=settings.WEBHOOK_TIMEOUT,
        )
        if not 200 <= code < 300:
            error = f"The endpoint answered {code}."
    except safe_http.Unsafe as e:
        error = str(e)
    except Exception as e:  # timeouts, refused connections, TLS failures
        error = f"{type(e).__name__}: {e}"[:500]
    return record(delivery, code, error)


def record(delivery, code, error):
    now = timezone.now()
    fields = {"last_status_code": code, "last_error": error[:500]}
    delays = settings.WEBHOOK_RETRY_DELAYS
    if not error:
        fields.update(status=Delivery.Status.SUCCEEDED, finished_at=now)
    elif delivery.attempts > len(delays):
        fields.update(status=Delivery.Status.FAILED, finished_at=now)
    else:
        delay = delays[delivery.attempts - 1]
        fields["next_attempt_at"] = now + timedelta(seconds=delay)
    Delivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).update(**fields)
    if "next_attempt_at" in fields and delay <= settings.WEBHOOK_COUNTDOWN_MAX:
        publish(
            delivery.pk, countdown=delay
        )  # a longer wait is the sweeper's: no countdown past the visibility
    return fields.get("status", Delivery.Status.PENDING)


def sweep():
    """Publish pending deliveries that are due (long retry delays, lost messages, a sender that died)."""
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now())
    ids = list(due.values_list("pk", flat=True)[:1000])
    for delivery_id in ids:
        publish(delivery_id)
    return len(ids)
