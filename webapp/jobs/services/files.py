"""Names and deletion of the files jobs keep in the storage (disk or S3): one home, shared by the site, the
workers and the sweeper."""

import secrets

from django.core.files.storage import default_storage


def storage_name(kind, ext):
    """An unguessable name under the storage root."""
    return f"{kind}/{secrets.token_urlsafe(18)}.{ext}"


def storage_folder(kind):
    """An unguessable folder under the storage root, named with a trailing "/" (how remove() knows it)."""
    return f"{kind}/{secrets.token_urlsafe(18)}/"


def remove(names):
    """Delete files, and folders named with a trailing "/" (storage_folder) with the files in them."""
    for name in names:
        try:
            delete_folder(name) if name.endswith("/") else default_storage.delete(name)
        except OSError:
            pass


def delete_folder(folder):
    """Delete the files in ``folder`` ("kind/token/"), then the folder itself where the storage has folders
    (a disk; S3 has only the files)."""
    try:
        names = default_storage.listdir(folder)[1]
    except FileNotFoundError:
        return
    for name in names:
        default_storage.delete(folder + name)
    try:
        default_storage.path(folder)
    except NotImplementedError:
        return  # S3: a prefix, gone with its last object
    default_storage.delete(folder.rstrip("/"))  # a disk: the empty directory
