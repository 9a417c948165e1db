"""The queue tells the truth: no job id is carried by more than one message (queue list plus kombu's unacked
hash), a flushed broker gets every queued job back within two sweeps, once, oldest first, and a cancelled or
deleted queued job leaves no message behind. The sweep runs in this process; every message is decoded."""

import json
import subprocess
import sys
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import ROOT, service_env
from tests.platform.factories import make_job
from webapp.jobs import queue
from webapp.jobs.models import Job, Status
from webapp.jobs.services import sweeper, web, worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(settings):
    """The test broker database, emptied (it is this session's own), and REPUBLISH_AFTER=0."""
    settings.REPUBLISH_AFTER = 0
    queue.broker().flushdb()
    yield queue.broker()
    queue.broker().flushdb()


def carried():
    """Counter of job ids over every message: waiting in the list and taken but unacknowledged."""
    ids = [job_id for job_id, _ in queue.waiting()] + [job_id for job_id, _ in queue.unacked().values()]
    return Counter(ids)


@pytest.fixture
def backlog(alice, broker):
    """200 QUEUED rows, created a second apart, none published yet."""
    start = timezone.now() - timedelta(hours=1)
    jobs = [
        Job(
            owner=alice,
            original_name=f"{i}.png",
            input_format="png",
            input_width=16,
            input_height=16,
            scale=2,
            model="edsr-x2",
            created_at=start + timedelta(seconds=i),
        )
        for i in range(200)
    ]
    return [str(job.id) for job in Job.objects.bulk_create(jobs)]


@pytest.fixture
def take_one():
    """What a worker's consumer does: take the next message, leaving it unacknowledged in kombu's hash for as
    long as the test runs (closing the connection would put it back, as a warm shutdown does)."""
    from webapp.celery import app

    conn = app.connection_for_read()
    channel = conn.channel()

    def take():
        return queue.job_of(json.dumps(channel.basic_get(queue.QUEUE, no_ack=False)._raw))

    yield take
    conn.release()


def test_it_publishes_each_queued_job_once_however_often_it_sweeps(backlog):
    assert sweeper.sweep() == 200
    assert sweeper.sweep() == 0 and sweeper.sweep() == 0
    assert carried() == Counter(backlog)
    assert [job_id for job_id, _ in queue.waiting()] == backlog  # oldest first: the next taken is the oldest


def test_it_publishes_everything_again_within_two_sweeps_after_the_broker_is_flushed(backlog, broker):
    sweeper.sweep()
    broker.flushdb()  # what a Redis restart without persistence does
    assert sweeper.sweep() + sweeper.sweep() == 200
    assert carried() == Counter(backlog)
    assert [job_id for job_id, _ in queue.waiting()] == backlog


def test_it_never_republishes_a_job_once_a_worker_took_its_message(backlog, take_one):
    sweeper.sweep()
    job_id = take_one()
    assert job_id == backlog[0]
    assert worker.claim(job_id) is not None
    queue.taken(job_id)  # what run_job does after the claim
    assert sweeper.sweep() == 0
    assert carried() == Counter(backlog)  # the taken one is in the unacked hash, once


def test_it_puts_a_dead_workers_message_back_instead_of_publishing_another(backlog, take_one):
    sweeper.sweep()
    job_id = take_one()
    worker.claim(job_id)
    queue.taken(job_id)
    Job.objects.filter(pk=job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))  # it died
    assert sweeper.sweep() == 1
    assert queue.unacked() == {}
    assert carried() == Counter(backlog)
    assert queue.waiting()[0][0] == job_id  # back at the head: it is taken next
    assert sweeper.sweep() == 0


def test_it_gives_a_marker_to_a_message_celery_requeued(backlog, broker, take_one):
    sweeper.sweep()
    job_id = take_one()
    worker.claim(job_id)
    queue.taken(job_id)
    tag, (_, raw) = next(iter(queue.unacked().items()))  # what reject_on_worker_lost does: back into the list
    broker.rpush(queue.QUEUE, json.dumps(json.loads(raw)[0]))
    broker.hdel(queue.UNACKED, tag)
    Job.objects.filter(pk=job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert sweeper.sweep() == 1
    assert carried() == Counter(backlog)


def test_it_removes_the_message_of_a_cancelled_or_deleted_queued_job(
    backlog, broker, django_capture_on_commit_callbacks
):
    sweeper.sweep()
    first, second = Job.objects.get(pk=backlog[5]), Job.objects.get(pk=backlog[6])
    with django_capture_on_commit_callbacks(execute=True):
        assert web.cancel(first)
        web.delete(second)
    assert carried() == Counter(backlog[:5] + backlog[7:]), (backlog[5], backlog[6])
    assert not broker.exists(queue.marker(first.id)) and not broker.exists(queue.marker(second.id))
    assert queue.length() == 198
    assert sweeper.sweep() == 0


def test_it_publishes_a_retried_job_again(alice, broker, django_capture_on_commit_callbacks):
    job = make_job(alice, "failed")
    with django_capture_on_commit_callbacks(execute=True):
        assert web.retry(job)
    assert carried() == Counter([str(job.id)])
    assert sweeper.sweep() == 0


def test_it_keeps_jobs_published_moments_ago_for_their_own_publish(alice, broker, settings):
    settings.REPUBLISH_AFTER = 30
    fresh = make_job(alice, published_at=timezone.now())
    assert sweeper.sweep() == 0 and carried() == Counter()
    Job.objects.filter(pk=fresh.pk).update(published_at=timezone.now() - timedelta(seconds=31))
    assert sweeper.sweep() == 1


def test_it_skips_a_job_that_is_claimed_while_it_publishes(alice, broker):
    job = make_job(alice, "running", lease_expires_at=timezone.now() + timedelta(minutes=1))
    assert not queue.publish(job.id, still_wanted=lambda: False)
    assert carried() == Counter() and not broker.exists(queue.marker(job.id))
    assert Job.objects.get(pk=job.pk).status == Status.RUNNING


def test_a_process_that_imports_only_the_queue_publishes_through_the_project_app(broker):
    """No worker, no conftest: importing any part of webapp creates the project's app (webapp/__init__.py), so
    publishing never falls back to Celery's default app (which would try amqp://localhost and fail)."""
    job_id = str(uuid.uuid4())
    script = (
        "import django; django.setup()\n"
        "from celery import current_app\n"
        "from webapp.jobs import queue\n"
        f"print(current_app.main, queue.publish({job_id!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == ["webapp", "True"], out.stderr
    assert [waiting for waiting, _ in queue.waiting()] == [job_id]
