"""GET /metrics in the Prometheus text format (prometheus-client), the same from every web process.

Gauges are read at scrape time: jobs queued and running by scale and model variant from the database, the age of the
oldest queued job, the broker's queue length and the live workers (keys with a short TTL that each worker
refreshes) from Redis. Counters and histograms only grow: they are kept in one Redis hash (the broker's
database, shared by web and worker processes) and incremented where a job's status changes.

Readable with METRICS_TOKEN as a bearer token, or from METRICS_ALLOWED_CIDRS matched against the client's
address behind trusted proxies (never a trusted proxy's own); 404 when neither is set.
"""

import hmac
import json
import logging
import math
from collections import Counter

import redis
from django.conf import settings
from django.db.models import Count, F, Min, Q
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from webapp import proxy
from webapp.jobs import queue

log = logging.getLogger(__name__)
HASH = "upscale:metrics"
WORKER_KEY = "upscale:worker:"
# Seconds: a job waits from a moment to hours, runs from a fraction of a second to the time limit.
WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, math.inf)
RUN_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, math.inf)
COUNTERS = {
    "upscale_jobs_finished": ("Jobs that reached a final status.", ("status",)),
    "upscale_job_failures": ("Failed jobs by reason.", ("reason",)),
    "upscale_job_handbacks": ("Jobs handed back to the queue by a worker shutting down.", ()),
    "upscale_output_megapixels": ("Output megapixels of finished jobs.", ("scale",)),
    "upscale_parts_done": ("Parts of shared-out jobs computed, by the job's own worker or a helper.", ()),
}
HISTOGRAMS = {
    "upscale_job_wait_seconds": (
        "Seconds from upload to the start of the final run.",
        ("scale",),
        WAIT_BUCKETS,
    ),
    "upscale_job_run_seconds": ("Seconds of the final run, claim to finish.", ("scale",), RUN_BUCKETS),
}


# --- Recording (web and worker processes) ---------------------------------------------------------------


def _field(name, labels, suffix=""):
    return f"{name}{suffix}|{json.dumps(labels, sort_keys=True)}"


def increments(job, reason=None):
    """{hash field: amount} for a job that just reached its final status (a Job with status, scale, times)."""
    labels = {"scale": str(job.scale)}
    fields = {_field("upscale_jobs_finished", {"status": job.status}): 1}
    if job.status == "failed":
        fields[_field("upscale_job_failures", {"reason": reason or "unknown"})] = 1
    if job.status == "done":
        fields[_field("upscale_output_megapixels", labels)] = job.output_megapixels
    if job.started_at and job.finished_at:
        observed = [
            ("upscale_job_wait_seconds", job.queued_seconds),
            ("upscale_job_run_seconds", job.run_seconds),
        ]
        for name, value in observed:
            fields.update(_observation(name, labels, value))
    return fields


def _observation(name, labels, value):
    """The histogram's fields for one observation: every bucket at or above it, the sum and the count."""
    buckets = HISTOGRAMS[name][2]
    fields = {_field(name, {**labels, "le": _le(le)}, "_bucket"): 1 for le in buckets if value <= le}
    fields[_field(name, labels, "_sum")] = value
    fields[_field(name, labels, "_count")] = 1
    return fields


def _le(bound):
    return "+Inf" if bound == math.inf else repr(float(bound))


def add(fields):
    """Add ``fields`` to the shared hash; never raises (a metric is not worth a failed job)."""
    try:
        pipe = queue.broker().pipeline()
        for field, amount in fields.items():
            pipe.hincrbyfloat(HASH, field, amount)
        pipe.execute()
    except redis.RedisError as e:
        log.warning("metrics not recorded: %s", e)


def job_finished(job, reason=None):
    add(increments(job, reason))


def job_handed_back():
    add({_field("upscale_job_handbacks", {}): 1})


def part_done():
    add({_field("upscale_parts_done", {}): 1})


def worker_alive(name, ttl):
    """Called by each worker every few seconds: its key lives ``ttl`` seconds."""
    queue.broker().set(WORKER_KEY + name, timezone.now().isoformat(), ex=ttl)


def worker_gone(name):
    queue.broker().delete(WORKER_KEY + name)


# --- Scraping ---------------------------------------------------------------------------------------------


# The variant a job will run before its worker has chosen one: `auto` is decided from the file at run time.
PENDING_VARIANT = {"clean": "clean", "compressed": "jpeg", "auto": "auto"}


class JobsCollector:
    """Every family read fresh at each scrape."""

    def collect(self):
        from webapp.jobs.models import Job, Status

        yield from self.gauges(Job, Status)
        try:
            stored = {k.decode(): float(v) for k, v in queue.broker().hgetall(HASH).items()}
        except redis.RedisError as e:
            log.warning("metrics: Redis unavailable: %s", e)
            return
        yield from counters(stored)
        yield from histograms(stored)

    def gauges(self, Job, Status):
        jobs = GaugeMetricFamily(
            "upscale_jobs",
            "Jobs queued or running, by scale and model variant.",
            labels=["status", "scale", "variant"],
        )
        active = Job.objects.filter(status__in=[Status.QUEUED, Status.RUNNING])
        counts = Counter()
        for row in active.values("status", "scale", "source", "variant").annotate(n=Count("id")).order_by():
            counts[row["status"], str(row["scale"]), row["variant"] or PENDING_VARIANT[row["source"]]] += row[
                "n"
            ]
        for labels, n in counts.items():
            jobs.add_metric(list(labels), n)
        yield jobs
        yield self.parts()
        oldest = Job.objects.filter(status=Status.QUEUED).aggregate(at=Min("created_at"))["at"]
        age = (timezone.now() - oldest).total_seconds() if oldest else 0
        yield GaugeMetricFamily(
            "upscale_oldest_queued_job_age_seconds", "Age of the oldest queued job.", value=age
        )
        expired = Job.objects.filter(
            Q(status=Status.RUNNING) & Q(lease_expires_at__lt=timezone.now())
        ).count()
        yield GaugeMetricFamily(
            "upscale_jobs_lease_expired", "Running jobs whose lease ran out.", value=expired
        )
        try:
            length, workers = (
                queue.length(),
                sum(1 for _ in queue.broker().scan_iter(WORKER_KEY + "*", count=1000)),
            )
        except redis.RedisError:
            return  # the broker is down: its gauges are absent, the database's still answer
        yield GaugeMetricFamily(
            "upscale_broker_queue_length", "Messages waiting in the broker's queue.", value=length
        )
        yield GaugeMetricFamily(
            "upscale_workers_live", "Workers whose heartbeat key is alive.", value=workers
        )

    def parts(self):
        from webapp.jobs.models import Part, Status

        parts = GaugeMetricFamily(
            "upscale_parts", "Parts of running shared-out jobs, queued or running.", labels=["status"]
        )
        live = Part.objects.filter(job__status=Status.RUNNING, run=F("job__fanout"))
        counts = dict(live.values_list("status").annotate(n=Count("id")).order_by())
        for status in (Status.QUEUED, Status.RUNNING):
            parts.add_metric([status], counts.get(status, 0))
        return parts


def _parse(field):
    name, _, labels = field.partition("|")
    return name, json.loads(labels)


def counters(stored):
    families = {
        name: CounterMetricFamily(name, text, labels=labels) for name, (text, labels) in COUNTERS.items()
    }
    for field, value in stored.items():
        name, labels = _parse(field)
        if name in families:
            families[name].add_metric([labels[k] for k in COUNTERS[name][1]], value)
    yield from families.values()


def histograms(stored):
    series = {}  # (name, scale) -> {"buckets": {le: n}, "sum": s}
    for field, value in stored.items():
        name, labels = _parse(field)
        base, _, part = name.rpartition("_")
        if base not in HISTOGRAMS:
            continue
        entry = series.setdefault((base, labels["scale"]), {"buckets": {}, "sum": 0.0})
        if part == "bucket":
            entry["buckets"][labels["le"]] = value
        elif part == "sum":
            entry["sum"] = value
    for name, (text, labels, bounds) in HISTOGRAMS.items():
        family = HistogramMetricFamily(name, text, labels=list(labels))
        for (base, scale), entry in sorted(series.items()):
            if base == name:
                buckets = [(_le(b), entry["buckets"].get(_le(b), 0.0)) for b in bounds]
                family.add_metric([scale], buckets, entry["sum"])
        yield family


def allowed(request):
    """True for the bearer METRICS_TOKEN (constant-time compare) or a client in METRICS_ALLOWED_CIDRS."""
    token = settings.METRICS_TOKEN
    sent = request.META.get("HTTP_AUTHORIZATION", "")
    if token and sent.startswith("Bearer ") and hmac.compare_digest(sent[7:].encode(), token.encode()):
        return True
    address = proxy.client_ip(request)
    return (
        bool(settings.METRICS_ALLOWED_CIDRS)
        and not proxy.is_trusted(address)
        and proxy.address_in(address, settings.METRICS_ALLOWED_CIDRS)
    )


def metrics(request):
    if not (settings.METRICS_TOKEN or settings.METRICS_ALLOWED_CIDRS):
        raise Http404
    if not allowed(request):
        return HttpResponseForbidden(
            "A bearer METRICS_TOKEN or an address in METRICS_ALLOWED_CIDRS is needed."
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobsCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
