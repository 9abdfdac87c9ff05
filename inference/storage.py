"""Canonical array files in Django's default storage (local disk or S3-compatible)."""

import hashlib
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


def array_bytes(array):
    """Serialise a float32 array as `.npy` bytes (never pickled)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def content_hash(array):
    """sha256 of an array's canonical content (float32, C order) and shape: equal for the same pixels
    wherever they are stored, so a hidden image is found again in any dataset, run or study."""
    canonical = np.ascontiguousarray(array, dtype=np.float32)
    digest = hashlib.sha256(repr(canonical.shape).encode())
    digest.update(canonical.tobytes())
    return digest.hexdigest()


def save_array(field, filename, array):
    """Store `array` in the FileField `field` under `filename`, replacing an earlier file.

    The name is deterministic, so running a job twice overwrites rather than piling up
    copies with random suffixes.
    """
    name = field.field.generate_filename(field.instance, filename)
    if default_storage.exists(name):
        default_storage.delete(name)
    field.save(filename, ContentFile(array_bytes(array)), save=False)
    return field.name


def load_array(field):
    with field.storage.open(field.name, "rb") as handle:
        return np.load(io.BytesIO(handle.read()), allow_pickle=False)


class UploadTooLarge(ValueError):
    """An upload went past its size limit while being copied."""


def copy_upload(source, destination, limit, chunk_bytes=1 << 20):
    """Copy a path, an UploadedFile or a file object to `destination`, at most `limit` bytes.

    The count is of bytes actually read, so a client that lies about its size is caught
    too; a partial copy is removed before UploadTooLarge is raised.
    """
    destination = Path(destination)
    handle = open(source, "rb") if isinstance(source, str | Path) else source
    try:
        if hasattr(handle, "seek"):
            handle.seek(0)
        chunks = handle.chunks() if hasattr(handle, "chunks") else iter(lambda: handle.read(chunk_bytes), b"")
        written = 0
        with open(destination, "wb") as sink:
            for chunk in chunks:
                written += len(chunk)
                if written > limit:
                    raise UploadTooLarge(f"The upload is larger than the limit of {limit} bytes.")
                sink.write(chunk)
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    finally:
        if handle is not source:
            handle.close()
    return destination


def spool_upload(source, limit, prefix="medgen-upload-"):
    """`copy_upload` to a new temporary file; the caller deletes it."""
    with tempfile.NamedTemporaryFile(prefix=prefix, delete=False) as tmp:
        path = Path(tmp.name)
    return copy_upload(source, path, limit)


def delete_files(names):
    """Delete stored files by name (those a rolled-back transaction wrote); the rest are still deleted
    when one fails."""
    for name in dict.fromkeys(names):
        try:
            if default_storage.exists(name):
                default_storage.delete(name)
        except OSError:
            continue


class LocalFile:
    def __init__(self, path, is_temporary):
        self.path = Path(path)
        self.is_temporary = is_temporary

    def __fspath__(self):
        return str(self.path)

    def __str__(self):
        return str(self.path)


def local_copy(field):
    """A local path for a stored file: the file itself on disk storage, a temp copy otherwise."""
    try:
        return LocalFile(field.path, is_temporary=False)
    except NotImplementedError:  # remote storage (S3)
        suffix = Path(field.name).suffix
        with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as tmp, field.storage.open(field.name) as src:
            shutil.copyfileobj(src, tmp)
        return LocalFile(tmp.name, is_temporary=True)
