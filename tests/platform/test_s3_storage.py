"""S3-compatible storage (S3_BUCKET): uploads, results and previews live in the bucket, nothing on local disk.

No S3 service runs on this machine, so the bucket is served by moto's S3 server: a separate process that
speaks the S3 HTTP API on loopback. The site (this process) and a real Celery worker process reach it through
django-storages and boto3 exactly as they would reach MinIO, Ceph or AWS.
"""

import io
import socket
import subprocess
import sys
import time

import boto3
import pytest
from django.test import override_settings
from PIL import Image

from tests.conftest import Worker, answers, media_files, upload_file, wait_for
from webapp.settings import s3_storage

pytestmark = pytest.mark.django_db(transaction=True)

BUCKET = "upscale-test"
CREDENTIALS = {"S3_ACCESS_KEY": "test-key", "S3_SECRET_KEY": "test-secret"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while not answers("127.0.0.1", port):
        assert server.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


@pytest.fixture
def bucket(s3_endpoint):
    s3 = boto3.resource(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["S3_ACCESS_KEY"],
        aws_secret_access_key=CREDENTIALS["S3_SECRET_KEY"],
    )
    bucket = s3.create_bucket(Bucket=BUCKET)
    yield bucket
    bucket.objects.all().delete()
    bucket.delete()


def s3_site(endpoint: str, bucket: str):
    """The site (this process) configured for ``bucket``, as S3_BUCKET and friends configure it."""
    storage = s3_storage(bucket, endpoint, CREDENTIALS["S3_ACCESS_KEY"], CREDENTIALS["S3_SECRET_KEY"])
    static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    return override_settings(STORAGES={"default": storage, "staticfiles": static})


@pytest.fixture
def s3_worker(s3_endpoint, bucket, tmp_path):
    """The site and a worker process, both configured for the bucket."""
    with s3_site(s3_endpoint, BUCKET):
        worker = Worker(tmp_path, S3_BUCKET=BUCKET, S3_ENDPOINT_URL=s3_endpoint, **CREDENTIALS)
        yield worker
        worker.stop()


def keys(bucket) -> list[str]:
    return sorted(o.key for o in bucket.objects.all())


def test_a_job_keeps_its_files_in_the_bucket_and_deleting_it_empties_it(alice_api, bucket, s3_worker):
    upload = {"image": upload_file(width=48, height=40), "scale": 2}
    r = alice_api.post("/api/v1/jobs", upload, format="multipart")
    assert r.status_code == 201, r.content
    job = wait_for(r.json()["id"])
    assert job.status == "done", job.error

    stored = keys(bucket)
    assert [k.split("/")[0] for k in stored].count("inputs") == 1
    assert [k.split("/")[0] for k in stored].count("results") == 1
    assert [k.split("/")[0] for k in stored].count("previews") == 3  # result, input and thumbnail
    assert media_files() == []  # nothing went to the local disk
    assert job.result_file.name in stored and job.attempt_files == []

    r = alice_api.get(f"/api/v1/jobs/{job.id}/result")
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(b"".join(r.streaming_content))) as im:
        assert im.size == (96, 80)

    assert alice_api.delete(f"/api/v1/jobs/{job.id}").status_code == 204
    assert keys(bucket) == []


def test_the_health_check_writes_to_the_bucket(client, s3_endpoint, bucket):
    with s3_site(s3_endpoint, BUCKET):
        r = client.get("/healthz")
        assert r.status_code == 200 and r.json()["storage"] == "ok"
    assert keys(bucket) == []  # its probe file is gone again
    with s3_site(s3_endpoint, "no-such-bucket"):
        r = client.get("/healthz")
        assert r.status_code == 503 and r.json()["storage"].startswith("failed: ")


def test_the_result_redirects_to_a_url_presigned_for_the_public_endpoint(
    alice, alice_api, s3_endpoint, bucket
):
    from urllib.parse import parse_qs, urlsplit

    import requests

    from tests.platform.factories import make_job

    public = s3_endpoint.replace("127.0.0.1", "localhost")  # the name clients use; the site uses the address
    with s3_site(s3_endpoint, BUCKET):
        job = make_job(alice, "done", original_name="cat photo.png")
        stored = job.result_file.open("rb").read()
        with override_settings(S3_PUBLIC_ENDPOINT_URL=public):
            r = alice_api.get(f"/api/v1/jobs/{job.id}/result?redirect=1")
            assert (
                alice_api.get(f"/api/v1/jobs/{job.id}/result").status_code == 200
            )  # no redirect unless asked
        streamed = alice_api.get(f"/api/v1/jobs/{job.id}/result?redirect=1")  # no public endpoint: streams
    assert r.status_code == 302
    location = urlsplit(r["Location"])
    assert f"{location.scheme}://{location.netloc}" == public
    assert int(parse_qs(location.query)["X-Amz-Expires"][0]) == 300
    got = requests.get(r["Location"], timeout=10)
    assert got.status_code == 200 and got.content == stored
    assert got.headers["Content-Type"] == "image/png"
    assert 'filename="cat photo-x2.png"' in got.headers["Content-Disposition"]
    query = parse_qs(location.query)  # SigV4 presigning signs every query parameter, these two included
    assert query["response-content-type"] == ["image/png"] and "X-Amz-Signature" in query
    assert "cat photo-x2.png" in query["response-content-disposition"][0]
    assert streamed.status_code == 200 and b"".join(streamed.streaming_content) == stored


def test_a_stranger_cannot_get_a_redirect(alice, bob_api, s3_endpoint, bucket):
    from tests.platform.factories import make_job

    with s3_site(s3_endpoint, BUCKET), override_settings(S3_PUBLIC_ENDPOINT_URL=s3_endpoint):
        job = make_job(alice, "done")
        assert bob_api.get(f"/api/v1/jobs/{job.id}/result?redirect=1").status_code == 404
