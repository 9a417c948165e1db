"""Publishing jobs to Celery by task name (the web process never imports the engine), with one message per job.

A marker key per published job lives in the broker's own Redis: ``SET NX`` before publishing, deleted when a
worker claims or skips the job, or when a queued job is cancelled or deleted. A flush (or a restart without
persistence) loses marker and message together, so the sweeper re-publishes exactly the jobs without a
marker, and never a job whose message is still waiting.

Messages are read the way kombu's Redis transport stores them: the queue is a list of JSON payloads (pushed
on the left, taken from the right), and a message taken but not yet acknowledged sits in the ``unacked`` hash
(delivery tag -> JSON [payload, exchange, routing key]) with its time in the ``unacked_index`` sorted set.
"""

import base64
import json
import logging

import redis
from celery import current_app
from django.conf import settings

from webapp import logs, redis_clients

log = logging.getLogger(__name__)
TASK = "webapp.jobs.tasks.upscale"
PART_TASK = "webapp.jobs.tasks.upscale_part"
QUEUE = "upscale"
MARKER = "upscale:published:"
UNACKED, UNACKED_INDEX = "unacked", "unacked_index"  # kombu's defaults (transport options unacked_key, ...)
CHUNK = 1000


def broker():
    """A client of the broker's Redis (the same database as Celery's messages)."""
    return redis_clients.broker()


def marker(job_id):
    return f"{MARKER}{job_id}"


def publish(job_id, still_wanted=None, **options):
    """Send the task unless a message for the job is already out. ``still_wanted()`` (optional) is asked
    after the marker is taken, so a job claimed meanwhile is not published again. True when sent; never
    blocks long nor raises when the broker is down (the sweeper retries)."""
    key = marker(job_id)
    try:
        if not broker().set(key, 1, nx=True, ex=settings.QUEUE_MARKER_TTL):
            return False  # a message is already waiting
        if still_wanted is not None and not still_wanted():
            broker().delete(key)
            return False
        current_app.send_task(
            TASK, args=[str(job_id)], queue=QUEUE, retry=False, task_id=logs.task_id(job_id), **options
        )
    except Exception as e:  # the broker is down or unreachable
        log.warning("could not publish job %s: %s", job_id, e, extra={"job_id": str(job_id)})
        _forget(key)
        return False
    return True


def publish_parts(job_id, run, count):
    """Wake up to ``count`` idle workers to help with the parts of the job's split ``run``. These messages carry
    no marker: a lost one costs nothing (the coordinator computes every part nobody took) and a surplus one is
    skipped at once. Returns how many were sent; never raises."""
    sent = 0
    try:
        for _ in range(count):
            current_app.send_task(PART_TASK, args=[str(job_id), run], queue=QUEUE, retry=False)
            sent += 1
    except Exception as e:  # the broker is down: the coordinator does the work alone
        log.warning("could not publish parts of job %s: %s", job_id, e, extra={"job_id": str(job_id)})
    return sent


def _forget(key):
    try:
        broker().delete(key)
    except redis.RedisError:
        pass  # the broker is down; the marker expires after QUEUE_MARKER_TTL


def taken(job_id):
    """The job's message was taken by a worker (claimed or skipped): a new one may be published."""
    _forget(marker(job_id))


def published(job_ids):
    """The subset of ``job_ids`` that have a marker (a message out for them)."""
    job_ids = [str(j) for j in job_ids]
    pipe = broker().pipeline(transaction=False)
    for job_id in job_ids:
        pipe.exists(marker(job_id))
    return {job_id for job_id, present in zip(job_ids, pipe.execute()) if present}


def job_of(raw):
    """The job id a kombu payload carries (bytes or str of its JSON), or None for anything else."""
    try:
        payload = json.loads(raw)
        if isinstance(payload, list):  # an unacked entry: [payload, exchange, routing key]
            payload = payload[0]
        if payload["headers"].get("task") != TASK:
            return None
        body = payload["body"]
        if payload["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        return str(json.loads(body)[0][0])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


def waiting():
    """[(job id, raw payload)] of the queue list, oldest (next to be taken) first."""
    client, messages, start = broker(), [], 0
    while True:
        chunk = client.lrange(QUEUE, start, start + CHUNK - 1)
        messages.extend((job_of(raw), raw) for raw in chunk)
        if len(chunk) < CHUNK:
            return messages[::-1]
        start += CHUNK


def unacked():
    """{delivery tag: (job id, raw entry)} of the messages taken and not yet acknowledged."""
    return {tag: (job_of(raw), raw) for tag, raw in broker().hgetall(UNACKED).items()}


def withdraw(job_id):
    """Remove the queued job's waiting messages and its marker (cancelled or deleted while queued). Returns how
    many messages were removed; never raises when the broker is down."""
    job_id = str(job_id)
    try:
        removed = sum(broker().lrem(QUEUE, 0, raw) for carried, raw in waiting() if carried == job_id)
        broker().delete(marker(job_id))
    except redis.RedisError as e:
        log.warning("could not withdraw job %s: %s", job_id, e, extra={"job_id": job_id})
        return 0
    return removed


def restore(job_id, carried_unacked):
    """Put the job's unacknowledged message (its worker died) back at the head of the queue, with its marker,
    instead of publishing another: as kombu does after the visibility timeout, but now. True if one was."""
    job_id = str(job_id)
    for tag, (carried, raw) in carried_unacked.items():
        if carried != job_id:
            continue
        payload = json.loads(raw)[0]
        pipe = broker().pipeline()  # MULTI: the message is in one place or the other, never both or neither
        pipe.rpush(QUEUE, json.dumps(payload))
        pipe.hdel(UNACKED, tag)
        pipe.zrem(UNACKED_INDEX, tag)
        pipe.set(marker(job_id), 1, ex=settings.QUEUE_MARKER_TTL)
        pipe.execute()
        return True
    return False


def adopt(job_id, carried_waiting):
    """Give a marker to a message already waiting for the job (requeued by Celery when its pool process died).
    True if there was one."""
    if str(job_id) in {carried for carried, _ in carried_waiting}:
        broker().set(marker(job_id), 1, ex=settings.QUEUE_MARKER_TTL)
        return True
    return False


def length():
    """Messages waiting in the queue list (what autoscaling reads)."""
    return broker().llen(QUEUE)
