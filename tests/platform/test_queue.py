"""The doorbell tells the truth: the sweep keeps as many bells waiting as there are claimable jobs (never more
however often it sweeps), a flushed broker gets them all back in one sweep, a worker that takes a bell claims
the oldest claimable row (once, even when two claim at the same moment), and a surplus bell is skipped. The
sweep runs in this process; bells are taken with a real consumer."""

import json
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.db import connection
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
    """What a worker's consumer does: take the next bell, leaving it unacknowledged in kombu's hash for as long
    as the test runs (closing the connection would put it back, as a warm shutdown does)."""
    from webapp.celery import app

    conn = app.connection_for_read()
    channel = conn.channel()

    def take():
        message = channel.basic_get(queue.QUEUE, no_ack=False)
        assert message is not None and message.headers["task"] == queue.TASK
        return message

    yield take
    conn.release()


def claimed_id():
    job = worker.claim_next()
    return str(job.id) if job else None


def test_it_rings_one_bell_per_claimable_job_however_often_it_sweeps(backlog):
    assert sweeper.sweep() == 200
    assert sweeper.sweep() == 0 and sweeper.sweep() == 0
    assert queue.length() == 200
    assert Job.objects.filter(published_at=None).count() == 0


def test_it_rings_every_bell_again_in_one_sweep_after_the_broker_is_flushed(backlog, broker):
    sweeper.sweep()
    broker.flushdb()  # what a Redis restart without persistence does
    assert sweeper.sweep() == 200 and sweeper.sweep() == 0
    assert queue.length() == 200


def test_a_worker_that_takes_a_bell_claims_the_oldest_job_and_no_bell_is_added(backlog, take_one):
    sweeper.sweep()
    take_one()
    assert claimed_id() == backlog[0]
    assert sweeper.sweep() == 0  # 199 claimable, 199 bells waiting; the taken one is unacknowledged
    assert claimed_id() == backlog[1]  # the next bell's claim, whichever bell it is


def test_it_rings_for_a_dead_workers_job_and_the_next_claim_takes_it_first(backlog, take_one):
    sweeper.sweep()
    take_one()
    job_id = claimed_id()
    Job.objects.filter(pk=job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))  # it died
    assert sweeper.sweep() == 1 and queue.length() == 200
    assert sweeper.sweep() == 0
    again = worker.claim_next()
    assert (str(again.id), again.attempts) == (job_id, 2)  # the oldest claimable row


def test_it_rings_nothing_for_a_bell_celery_requeued(backlog, broker, take_one):
    sweeper.sweep()
    take_one()
    job_id = claimed_id()
    tag, raw = next(
        iter(broker.hgetall("unacked").items())
    )  # what reject_on_worker_lost does: back to the list
    broker.rpush(queue.QUEUE, json.dumps(json.loads(raw)[0]))
    broker.hdel("unacked", tag)
    Job.objects.filter(pk=job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert queue.length() == 200 and sweeper.sweep() == 0


def test_a_cancelled_or_deleted_queued_job_leaves_a_surplus_bell_that_is_skipped(backlog, broker):
    sweeper.sweep()
    first, second = Job.objects.get(pk=backlog[0]), Job.objects.get(pk=backlog[1])
    assert web.cancel(first)
    web.delete(second)
    assert queue.length() == 200 and sweeper.sweep() == 0  # 198 claimable, 200 bells
    assert claimed_id() == backlog[2]
    Job.objects.filter(pk__in=backlog).update(status=Status.DONE)
    assert worker.run_job() == "skipped"  # a surplus bell: one query, no claim


def test_it_publishes_a_retried_job_again(alice, broker, django_capture_on_commit_callbacks):
    job = make_job(alice, "failed")
    with django_capture_on_commit_callbacks(execute=True):
        assert web.retry(job)
    assert queue.length() == 1
    assert sweeper.sweep() == 0


def test_it_keeps_jobs_published_moments_ago_for_their_own_publish(alice, broker, settings):
    settings.REPUBLISH_AFTER = 30
    fresh = make_job(alice, published_at=timezone.now())
    assert sweeper.sweep() == 0 and queue.length() == 0
    Job.objects.filter(pk=fresh.pk).update(published_at=timezone.now() - timedelta(seconds=31))
    assert sweeper.sweep() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_at_once_never_take_the_same_job(alice, broker):
    """SKIP LOCKED: each claim passes over the row another transaction is claiming."""
    ids = {str(make_job(alice).id) for _ in range(20)}
    taken, start = [[], []], threading.Barrier(2)

    def claim_all(mine):
        start.wait()
        try:
            while (job_id := claimed_id()) is not None:
                mine.append(job_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim_all, args=(mine,)) for mine in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(taken[0] + taken[1]) == sorted(ids)  # every job once: none twice, none missed


@pytest.mark.django_db(transaction=True)
def test_a_bell_that_meets_a_row_locked_by_another_writer_still_claims_it(alice, broker):
    """A publish's note (or any short UPDATE) holds the row's lock the moment the woken worker looks: SKIP
    LOCKED passes over it, and the claim looks again instead of wasting the bell (found measuring: a job
    stayed queued until the next sweep)."""
    from django.db import transaction

    job = make_job(alice)
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Job.objects.select_for_update().filter(pk=job.pk).update(published_at=timezone.now())
                locked.set()
                release.wait(5)
        finally:
            connection.close()

    writer = threading.Thread(target=hold)
    writer.start()
    assert locked.wait(5)
    threading.Timer(0.2, release.set).start()
    claimed = worker.claim_next()
    writer.join(5)
    assert claimed is not None and claimed.id == job.id


def test_a_process_that_imports_only_the_queue_publishes_through_the_project_app(broker):
    """No worker, no conftest: importing any part of webapp creates the project's app (webapp/__init__.py), so
    publishing never falls back to Celery's default app (which would try amqp://localhost and fail)."""
    script = (
        "import django; django.setup()\n"
        "from celery import current_app\n"
        "from webapp.jobs import queue\n"
        "print(current_app.main, queue.ring())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == ["webapp", "1"], out.stderr
    assert queue.length() == 1
