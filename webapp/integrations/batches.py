"""Batches: many files in one request, each its own job; a refused file does not stop the others."""

from django.conf import settings

from webapp.integrations.models import Batch
from webapp.jobs.services import web


class TooMany(Exception):
    pass


def create_batch(
    user, files, scale, fmt="png", quality=95, keep_metadata=False, source="auto", network=None, target=None
):
    """Submit every file as a job with the same options (rate limits and quotas count each); returns (batch or
    None, refused) where refused is [{"filename", "detail", "code", "status"}] and batch is None when no file
    was accepted. ``network`` None: the server's default. ``target`` (a Target, ``scale`` None): each file runs
    the smallest scale that reaches it. Raises TooMany, and web.Refused (code unsupported_network) before any
    file is looked at when the network lacks ``scale``: the option is the whole batch's, so is its refusal."""
    if len(files) > settings.MAX_BATCH_FILES:
        raise TooMany(f"A batch holds at most {settings.MAX_BATCH_FILES} files; this one has {len(files)}.")
    network = web.choose_network(network, scale)
    jobs, refused = [], []
    for f in files:
        try:
            jobs.append(web.submit(user, f, scale, fmt, quality, keep_metadata, source, network, target))
        except web.Refused as e:
            refused.append({"filename": f.name, "detail": str(e), "code": e.code, "status": e.status})
    if not jobs:
        return None, refused
    batch = Batch.objects.create(
        owner=user, refused=[{k: r[k] for k in ("filename", "detail", "code")} for r in refused]
    )
    batch.jobs.add(*jobs)
    return batch, refused
