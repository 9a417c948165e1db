"""A ZIP of finished results, streamed (zipstream-ng): nothing is held whole in memory or written to disk,
ZIP64 only when the archive needs it, and the length is known before the first byte (stored, not deflated:
PNG, JPEG and WebP are compressed already)."""

import re
import unicodedata

from django.http import StreamingHttpResponse
from zipstream import ZIP_STORED, ZipStream

CHUNK = 1 << 20
UNSAFE = re.compile(r"[/\\]")
MAX_NAME = 200  # characters: under the 255 bytes most file systems allow, with room for " (2)"


def safe_name(name):
    """An entry name with no path separator, control character or leading dot (a ZIP entry like
    ``../../.bashrc`` would climb out of the folder, or hide, where it is unpacked)."""
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")  # control, format, unassigned
    name = UNSAFE.sub("_", name).strip().lstrip(". ").strip()
    return shortened(name) or "image"


def shortened(name, limit=MAX_NAME):
    """``name`` cut to ``limit`` characters in its stem, so a long name keeps its extension."""
    if len(name) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 8:
        return name[:limit]
    return f"{stem[: limit - len(ext) - 1]}.{ext}"


def unique_names(names):
    """Sanitised names, the second ``photo.png`` becoming ``photo (2).png`` (case-insensitive, as on Windows
    and macOS)."""
    taken, result = set(), []
    for name in map(safe_name, names):
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        candidate, n = name, 1
        while candidate.lower() in taken:
            n += 1
            suffix = f" ({n}){dot}{ext}"
            candidate = stem[: MAX_NAME - len(suffix)] + suffix
        taken.add(candidate.lower())
        result.append(candidate)
    return result


def chunks(field):
    with field.open("rb") as f:
        while block := f.read(CHUNK):
            yield block


ZIP = "application/zip"


def results_zip(jobs, filename, content_type=ZIP):
    """A StreamingHttpResponse with the ZIP of these jobs' results (jobs without a result are left out)."""
    jobs = [j for j in jobs if j.status == "done" and j.result_file]
    stream = ZipStream(compress_type=ZIP_STORED, sized=True)
    for job, name in zip(jobs, unique_names([j.result_name for j in jobs])):
        stream.add(chunks(job.result_file), name, size=job.output_bytes or job.result_file.size)
    response = StreamingHttpResponse(stream, content_type=content_type)
    response["Content-Length"] = str(len(stream))
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Accel-Buffering"] = "no"  # nginx (and ingress-nginx) pass the stream on as it comes
    return response
