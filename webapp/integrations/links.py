"""Result links presigned for the public S3 endpoint: the client downloads from the bucket, not through us."""

from django.conf import settings
from django.utils.http import content_disposition_header


def presigned_result_url(field, content_type, filename):
    """A GET URL for ``field``'s object, presigned for S3_PUBLIC_ENDPOINT_URL and PRESIGNED_SECONDS (at most
    300 s), with the content type and the download file name signed in; None unless the storage is S3 and
    S3_PUBLIC_ENDPOINT_URL is set. The signature covers the host, so the URL is signed for the public endpoint
    by a client of its own rather than rewritten from the internal one."""
    storage = field.storage
    if not settings.S3_PUBLIC_ENDPOINT_URL or not hasattr(storage, "bucket_name"):
        return None
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=settings.S3_PUBLIC_ENDPOINT_URL,
        aws_access_key_id=storage.access_key,
        aws_secret_access_key=storage.secret_key,
        region_name=storage.region_name or "us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    return client.generate_presigned_url(
        "get_object",
        ExpiresIn=min(300, settings.PRESIGNED_SECONDS),
        Params={
            "Bucket": storage.bucket_name,
            "Key": storage._normalize_name(field.name),
            "ResponseContentType": content_type,
            "ResponseContentDisposition": content_disposition_header(True, filename),
        },
    )
