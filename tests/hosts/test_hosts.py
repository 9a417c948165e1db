"""Worker hosts over a real network, with partitions: the platform on Linux network namespaces (see
scripts/cluster.py).

A services host (Redis, PostgreSQL, moto's S3, the beat), a web host (gunicorn) and two worker hosts, each in
its own network, UTS and PID namespace with its own hostname and working directory; media in S3. Each
scenario is bounded to about 90 s. Lease 4 s, sweeps every second (storage every 2 s), and each tile slowed
by 0.1 s (TEST_TILE_DELAY) so a job lasts about a second on any CPU.
"""

import time

import pytest

from scripts import cluster as hosts
from tests.conftest import MODELS_DIR, image_bytes

pytestmark = pytest.mark.slow

SETTINGS = {
    "JOB_LEASE_SECONDS": "4",
    "JOB_PROGRESS_INTERVAL": "0.5",
    "SWEEP_INTERVAL": "1",
    "REPUBLISH_AFTER": "3",
    "STORAGE_SWEEP_INTERVAL": "2",
    "TEST_TILE_DELAY": "0.1",
    "UPSCALE_TILE": "48",
    "UPSCALE_WINDOW_AREA": "0",  # the tiles only: windows fitted to 224x224 would be one
    "UPSCALE_THREADS": "1",
    "UPLOADS_PER_MINUTE": "1000",
    "MAX_QUEUED_JOBS_PER_USER": "200",
    # A cut worker's upload may land late (scenario 3): its S3 client waits for it that long.
    "S3_READ_TIMEOUT": "60",
}
LEASE = float(SETTINGS["JOB_LEASE_SECONDS"])
SMALL = image_bytes(96, 96)  # 3 x 3 tiles of 48: about a second
LARGE = image_bytes(224, 224)  # 7 x 7 tiles: about 5 s
ORDER = {"queued": 0, "running": 1, "done": 2, "failed": 2, "cancelled": 2}


def cluster(tmp_path_factory, name, settings):
    """A module's platform on namespace hosts (skipped where they cannot be made); no link left behind."""
    reason = hosts.unavailable()
    if reason:
        pytest.skip(reason)
    built = hosts.Cluster(tmp_path_factory.mktemp(name), MODELS_DIR, **settings)
    yield built
    tag = built.net.tag
    built.close()
    assert hosts.our_links(tag) == []


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    yield from cluster(tmp_path_factory, "hosts", SETTINGS)


@pytest.fixture(scope="module")
def user(platform):
    return hosts.Client(platform.url, "ann")


def job(platform, job_id):
    """(status, worker host, attempts, result_file) of one job, read on the services host."""
    status, worker, attempts, result = platform.query(
        "SELECT status, worker, attempts, result_file FROM jobs_job WHERE id = %s", job_id
    )[0]
    return status, worker.rpartition(":")[0], attempts, result


def wait_done(platform, job_ids, seconds=90):
    def finished():
        rows = platform.query("SELECT id::text, status FROM jobs_job WHERE id::text = ANY(%s)", list(job_ids))
        return len(rows) == len(job_ids) and all(s in ("done", "failed", "cancelled") for _, s in rows)

    hosts.wait_until(finished, f"{len(job_ids)} jobs finished", seconds, every=0.2)
    return {job_id: job(platform, job_id) for job_id in job_ids}


def results(platform):
    return {k for k in platform.objects() if k.startswith("results/")}


def host_of(platform, hostname):
    return next(h for h in platform.workers if h.hostname == hostname)


def logs_of(platform, host):
    return platform.processes[host.name].output()


def test_jobs_from_the_web_host_run_on_both_worker_hosts_against_the_services_host(platform, user):
    names = {h.hostname for h in platform.workers}
    warm = [user.submit(SMALL) for _ in platform.workers]  # each idle worker takes one (prefetch 1)
    assert {host for _, host, _, _ in wait_done(platform, warm).values()} == names

    started = time.monotonic()
    ids = [user.submit(SMALL) for _ in range(20)]
    done = wait_done(platform, ids)
    print(f"20 jobs on 2 worker hosts: {time.monotonic() - started:.1f} s")
    assert [status for status, *_ in done.values()] == ["done"] * 20
    ran_on = [host for _, host, _, _ in done.values()]
    assert set(ran_on) == names, ran_on  # the job's worker field names the host (host:pid, its own hostname)
    assert {r for *_, r in done.values()} <= results(platform)

    listening = set(platform.svc.run("ss", "-ltnH").split()[3::5])  # Local Address:Port of each TCP listener
    assert listening == {f"{platform.svc.address}:{port}" for port in hosts.SERVICE_PORTS.values()}
    assert platform.svc.run("ss", "-lxH").strip() == ""  # no Unix sockets
    for (
        host
    ) in platform.workers:  # database, Redis and S3 traffic went to the services host, nothing elsewhere
        sent = host.traffic()
        assert sent["postgres"] > 0 and sent["redis"] > 0 and sent["s3"] > 0 and sent["elsewhere"] == 0, sent


def test_a_job_cut_off_mid_way_finishes_exactly_once_on_the_other_host(platform, user):
    job_id = user.submit(LARGE)
    seen = []

    def running_mid_way():
        status, host, _, _ = job(platform, job_id)
        progress = platform.query("SELECT progress FROM jobs_job WHERE id = %s", job_id)[0][0]
        return host if status == "running" and 0 < progress < 80 else None

    cut = host_of(platform, hosts.wait_until(running_mid_way, "the large job running", 60, every=0.05))
    other = next(h for h in platform.workers if h is not cut)
    cut.cut()
    cut_at = time.monotonic()
    try:

        def finished_elsewhere():
            seen.append(job(platform, job_id))
            return seen[-1][0] in ("done", "failed", "cancelled")

        hosts.wait_until(finished_elsewhere, "the job finished after the cut", 60, every=0.1)
        took = time.monotonic() - cut_at
        status, host, attempts, result = seen[-1]
        assert (status, host, attempts) == ("done", other.hostname, 2), seen[-1]
        assert took > LEASE - 1  # after the lease ran out, not before
        orders = [ORDER[s] for s, *_ in seen]
        assert orders == sorted(orders), seen  # status moved only forward
        assert [r for r in results(platform) if r == result] == [result]
        assert len(results(platform)) == len(platform.query("SELECT 1 FROM jobs_job WHERE status = 'done'"))

        # The cut worker noticed the dead link by itself, in seconds (the kernel alone would take 15 minutes).
        hosts.wait_until(lambda: f"job {job_id} failed" in logs_of(platform, cut), "the cut noticed", 40)
        noticed = time.monotonic() - cut_at
        print(f"cut -> done elsewhere {took:.1f} s; cut noticed by its worker's job in {noticed:.1f} s")
        assert noticed < 30
    finally:
        # Back about when keepalive ends the idle connections too: the window where a worker used to come back
        # deaf (its ack failed on a connection that had just died; webapp/broker.py retries it).
        cut.restore()

    # The link is back: the cut worker takes jobs again.
    def ran_on_cut_host():
        ids.append(user.submit(SMALL))
        return any(job(platform, i)[1] == cut.hostname for i in ids[:-1])

    ids = []
    hosts.wait_until(ran_on_cut_host, "a job on the host that was cut", 60, every=1.5)
    assert job(platform, job_id)[:3] == ("done", other.hostname, 2)  # nothing the cut worker did changed it
    wait_done(platform, ids)


def test_a_late_result_is_discarded_and_leaves_no_orphan_after_the_storage_sweep(platform, user):
    for host in platform.workers:
        host.cut_at_first_upload()  # the host that takes the job is cut as its result upload starts
    try:
        job_id = user.submit(SMALL)
        cut = hosts.wait_until(
            lambda: next((h for h in platform.workers if h.tripped()), None),
            "a worker cut at its upload",
            60,
            every=0.05,
        )
        other = next(h for h in platform.workers if h is not cut)
        other.restore()
        cut_at = time.monotonic()
        status, host, attempts, result = wait_done(platform, [job_id], 60)[job_id]
        assert (status, host, attempts) == ("done", other.hostname, 2)
        # Longer than keepalive needs to drop the cut worker's idle database connection (5 + 3 x 2 s).
        time.sleep(max(0.0, cut_at + 15 - time.monotonic()))
    finally:
        for host in platform.workers:
            host.restore()

    # The link is back: TCP delivers the cut worker's upload late, and its attempt ends without a row to
    # record it in (its database connection is gone, and so is its claim): the objects are orphans, unless
    # the attempt's own cleanup got through first (it removes what it stored when the job is not its DONE).
    # Either way none may stay once the storage sweep has run (tests/platform/test_storage_sweep.py tests
    # the sweep itself on disk and S3).
    hosts.wait_until(lambda: f"job {job_id} failed" in logs_of(platform, cut), "the late attempt's end", 60)
    orphans = platform.objects() - platform.named_objects()
    assert all(name.startswith(("results/", "previews/", "tiles/")) for name in orphans), orphans
    ended_at = time.monotonic()
    hosts.wait_until(
        lambda: platform.objects() == platform.named_objects(), "the orphans swept", 30, every=0.3
    )
    print(
        f"late objects of the cut worker, removed by the storage sweep {time.monotonic() - ended_at:.1f} s "
        f"after its attempt ended: {sorted(orphans)}"
    )
    assert job(platform, job_id) == ("done", other.hostname, 2, result)  # the late result was discarded
    assert [r for r in results(platform) if r == result] == [result]


def test_nothing_accepted_is_lost_when_the_services_redis_restarts(platform, user):
    ids = [user.submit(SMALL) for _ in range(6)]
    hosts.wait_until(
        lambda: platform.query("SELECT count(*) FROM jobs_job WHERE status = 'running'")[0][0] >= 2,
        "two jobs running",
        60,
        every=0.05,
    )
    platform.processes["redis"].stop()  # no persistence: every queued message is gone
    during = []
    for _ in range(2):
        started = time.monotonic()
        during.append(user.submit(SMALL))  # accepted while the broker is down
        assert time.monotonic() - started < 5
    time.sleep(1)
    platform.processes["redis"] = platform.start_redis()

    done = wait_done(platform, ids + during, 90)
    assert [status for status, *_ in done.values()] == ["done"] * 8
    stored = results(platform)
    assert all(r in stored for *_, r in done.values())
    assert len(stored) == len(platform.query("SELECT 1 FROM jobs_job WHERE status = 'done'"))  # each ran once
