"""One job shared out over two worker hosts (network namespaces, see cluster.py): it finishes right, once,
while the helper host is cut off mid-part and while the coordinating host is killed; no part is left in S3.
Settings as test_hosts.py, with every job of the large image split into 12 parts."""

import time

import pytest

from scripts import cluster as hosts
from tests.hosts.test_hosts import LARGE, SETTINGS, cluster, host_of, results, wait_done

pytestmark = pytest.mark.slow
SPLIT = {**SETTINGS, "FANOUT_MIN_MEGAPIXELS": "0.05", "FANOUT_MAX_PARTS": "12"}  # 224x224: 49 windows of 48


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    yield from cluster(tmp_path_factory, "fanout-hosts", SPLIT)


@pytest.fixture(scope="module")
def user(platform):
    return hosts.Client(platform.url, "fay")


def helped(platform, job_id):
    """(coordinating host, helper host) once a worker on the other host computes a part of the job."""
    rows = platform.query(
        "SELECT j.worker, p.worker FROM jobs_part p JOIN jobs_job j ON j.id = p.job_id "
        "WHERE j.id = %s AND p.status = 'running' AND p.run = j.fanout AND j.status = 'running'",
        job_id,
    )
    for coordinator, worker in rows:
        if worker.rpartition(":")[0] != coordinator.rpartition(":")[0]:
            return host_of(platform, coordinator.rpartition(":")[0]), host_of(
                platform, worker.rpartition(":")[0]
            )
    return None


def parts_left(platform):
    return {k for k in platform.objects() if k.startswith("parts/")}, platform.query(
        "SELECT id FROM jobs_part"
    )


def test_a_job_in_parts_finishes_once_while_its_helper_host_is_cut_off_mid_part(platform, user):
    job_id = user.submit(LARGE)
    coordinator, helper = hosts.wait_until(lambda: helped(platform, job_id), "a part on the other host", 60)
    helper.cut()
    try:
        status, host, attempts, result = wait_done(platform, [job_id], 60)[job_id]
        assert (status, host, attempts) == (
            "done",
            coordinator.hostname,
            1,
        )  # the job was never claimed again
    finally:
        helper.restore()
    assert [r for r in results(platform) if r == result] == [result]
    # What the cut helper wrote late (if anything) is no live part's: the storage sweep removes it.
    hosts.wait_until(lambda: parts_left(platform) == (set(), []), "no part left", 40, every=0.5)


def test_a_job_in_parts_finishes_once_on_the_other_host_when_its_coordinator_is_killed(platform, user):
    hosts.wait_until(lambda: parts_left(platform) == (set(), []), "a clean start", 40, every=0.5)
    job_id = user.submit(LARGE)
    coordinator, helper = hosts.wait_until(lambda: helped(platform, job_id), "a part on the other host", 60)
    platform.processes[coordinator.name].stop()  # kill -9 of the coordinating worker
    killed = time.monotonic()
    status, host, attempts, result = wait_done(platform, [job_id], 60)[job_id]
    assert (status, host, attempts) == ("done", helper.hostname, 2)  # claimed again after its lease
    assert time.monotonic() - killed > float(SETTINGS["JOB_LEASE_SECONDS"]) - 1
    assert [r for r in results(platform) if r == result] == [result]
    hosts.wait_until(lambda: parts_left(platform) == (set(), []), "no part left", 40, every=0.5)
