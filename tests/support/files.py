"""Uploads built in memory or under tmp_path: .npy bytes, zip archives, a run's outputs as a submission."""

import io
import zipfile

import numpy as np


def npy_bytes(array):
    """`array` as an .npy file's bytes, its dtype kept."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return buffer.getvalue()


def float32_npy(array):
    """`array` as float32 .npy bytes (what a model's output file holds)."""
    return npy_bytes(np.asarray(array, dtype=np.float32))


def write_zip(path, entries):
    """A deflated zip at `path` of {name: bytes}."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def zip_bytes(entries, name="upload.zip"):
    """A zip of {name: bytes} as an open in-memory file named `name`, ready to post."""
    buffer = io.BytesIO()
    write_zip(buffer, entries)
    buffer.seek(0)
    buffer.name = name
    return buffer


def outputs_zip(task, value=0.5):
    """A submission's outputs.zip: one float32 `<case_id>.npy` of the input's shape, filled with `value`, per case."""
    cases = task.dataset.cases.all()
    entries = {f"{c.case_id}.npy": float32_npy(np.full(c.images.get(role="input").shape, value)) for c in cases}
    return zip_bytes(entries, name="outputs.zip")
