"""Canonical array files in Django's default storage (local disk or S3-compatible)."""

import io

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


def array_bytes(array):
    """Serialise a float32 array as `.npy` bytes (never pickled)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


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
