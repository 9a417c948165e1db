"""The Kubernetes manifests (docker/kubernetes/): every core object valid for a pinned Kubernetes version,
the KEDA ScaledObject's target, trigger and query (run against the real database), and the web, worker,
webhook sender and beat commands and environment variable names the same as docker/compose.yaml's, but for
the differences listed here on purpose."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "docker" / "kubernetes"
KUBERNETES = "1.33.0"  # the oldest version the manifests promise to work on (kubernetes-validate's schemas)
KEDA = "keda.sh/v1alpha1"  # a CRD: no core schema; checked field by field below

# Environment variables one side has and the other does not, and why. Anything else is a mistake.
ONLY_IN_COMPOSE = {
    # compose shares a media volume between its containers; pods share no disk, so media are in S3.
    "MEDIA_ROOT",
}
ONLY_IN_KUBERNETES = {
    # S3 storage for media (compose uses the shared volume instead).
    "S3_BUCKET",
    "S3_ENDPOINT_URL",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
}
ONLY_IN_KUBERNETES_WORKER = {
    # The CPU limit: in a pod the process' affinity shows every core of the node (compose's container
    # gets the machine's cores, which share_the_cores() reads).
    "UPSCALE_THREADS",
}
# Other intended differences, not compared: compose builds its own image and runs its own PostgreSQL and
# Redis (Kubernetes uses the operator's, named in the Secret); compose's web container migrates before it
# starts gunicorn, Kubernetes runs the migration as a Job (compared below); compose has no autoscaler.


def documents() -> list[dict]:
    docs = []
    for path in sorted(FOLDER.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def find(kind: str, name: str) -> dict:
    return next(d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def container(name: str) -> dict:
    kind = "Job" if name == "upscale-migrate" else "Deployment"
    return find(kind, name)["spec"]["template"]["spec"]["containers"][0]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]


def env_names(name: str) -> set[str]:
    """Every variable the container gets: its ConfigMaps and Secrets (all keys) and its own env."""
    spec = container(name)
    names = {e["name"] for e in spec.get("env", [])}
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(find("ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            names |= set(find("Secret", source["secretRef"]["name"])["stringData"])
    return names


def test_the_kustomization_lists_every_manifest():
    listed = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in FOLDER.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize(
    "doc",
    [d for d in documents() if d["apiVersion"] != KEDA],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_every_core_object_is_valid_for_the_pinned_kubernetes(doc):
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)  # raises ValidationError naming the field


def test_the_validation_catches_a_misspelt_field():
    doc = find("Deployment", "upscale-worker")
    doc["spec"]["template"]["spec"]["terminationGracePeriod"] = 120
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_web_probes_are_livez_and_readyz_never_healthz():
    web = container("upscale-web")
    assert web["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    probed = [
        c[probe]["httpGet"]["path"]
        for d in documents()
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
        for probe in c
        if probe.endswith("Probe")
    ]
    assert "/healthz" not in probed
    assert "localhost" in find("ConfigMap", "upscale-config")["data"]["ALLOWED_HOSTS"].split(",")
    service = find("Service", "upscale-web")
    assert service["spec"]["selector"] == find("Deployment", "upscale-web")["spec"]["selector"]["matchLabels"]


def test_the_worker_has_cpu_limits_its_thread_count_and_time_to_hand_back():
    deployment = find("Deployment", "upscale-worker")["spec"]["template"]["spec"]
    worker = container("upscale-worker")
    assert deployment["terminationGracePeriodSeconds"] >= 60
    assert worker["resources"]["requests"]["cpu"] and worker["resources"]["limits"]["cpu"]
    threads = next(e for e in worker["env"] if e["name"] == "UPSCALE_THREADS")["valueFrom"][
        "resourceFieldRef"
    ]
    assert threads == {"containerName": worker["name"], "resource": "limits.cpu", "divisor": "1"}


def test_there_is_exactly_one_beat():
    beat = find("Deployment", "upscale-beat")["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    beats = [
        d
        for d in documents()
        if d["kind"] == "Deployment" and "beat" in d["spec"]["template"]["spec"]["containers"][0]["command"]
    ]
    assert len(beats) == 1


def test_keda_scales_the_workers_on_queued_and_running_jobs_down_to_zero():
    scaled = find("ScaledObject", "upscale-worker")["spec"]
    assert scaled["scaleTargetRef"]["name"] == "upscale-worker"
    assert find("Deployment", scaled["scaleTargetRef"]["name"])
    assert (
        scaled["minReplicaCount"] == 0 and scaled["maxReplicaCount"] >= 1 and scaled["cooldownPeriod"] >= 60
    )
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "postgresql"
    assert (
        int(trigger["metadata"]["targetQueryValue"]) >= 1
        and trigger["metadata"]["activationTargetQueryValue"] == "0"
    )
    auth = find("TriggerAuthentication", trigger["authenticationRef"]["name"])["spec"]["secretTargetRef"]
    assert [(a["parameter"], a["key"]) for a in auth] == [("connection", "DATABASE_URL")]
    assert "DATABASE_URL" in find("Secret", auth[0]["name"])["stringData"]


@pytest.mark.django_db
def test_the_scaling_query_counts_exactly_the_queued_and_running_jobs(alice):
    from django.db import connection

    from tests.platform.factories import make_job

    for status, count in {"queued": 3, "running": 2, "done": 4, "failed": 1, "cancelled": 1}.items():
        for _ in range(count):
            make_job(alice, status)
    query = find("ScaledObject", "upscale-worker")["spec"]["triggers"][0]["metadata"]["query"]
    with connection.cursor() as cursor:
        cursor.execute(query)
        assert cursor.fetchone()[0] == 5


@pytest.mark.parametrize("name", ["web", "worker", "webhooks", "beat"])
def test_the_commands_are_composes(name):
    command = compose()[name]["command"].split()
    if name == "web":  # compose migrates first, in the same container; Kubernetes runs the migration as a Job
        joined = compose()[name]["command"].strip()
        migrate, serve = joined.removeprefix('sh -c "').removesuffix('"').split(" &&")
        assert container("upscale-migrate")["command"] == migrate.split()
        command = serve.split()
    assert container(f"upscale-{name}")["command"] == command


@pytest.mark.parametrize("name", ["web", "worker", "webhooks", "beat", "migrate"])
def test_the_environment_names_are_composes_but_for_the_listed_differences(name):
    in_compose = set(compose()["web" if name == "migrate" else name]["environment"])
    expected = in_compose - ONLY_IN_COMPOSE | ONLY_IN_KUBERNETES
    if name == "worker":
        expected |= ONLY_IN_KUBERNETES_WORKER
    assert env_names(f"upscale-{name}") == expected
