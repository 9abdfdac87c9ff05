"""The test inputs of a task as a zip, for participants who run their model at home and submit outputs."""

import tempfile
import zipfile

import numpy as np

from ..models import ImageRole
from ..storage import array_bytes


def inputs_archive(task):
    """A file object (at position 0) of a zip holding `<case_id>.npy` per case of the task's dataset: the
    case's input images concatenated along channels, float32 (C, *spatial), as models receive them. A
    submission of outputs uses the same names. Spooled to disk past 64 MiB."""
    spool = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for case in task.dataset.cases.order_by("case_id").prefetch_related("images"):
            inputs = sorted((im for im in case.images.all() if im.role == ImageRole.INPUT), key=lambda im: im.index)
            if inputs:
                array = np.concatenate([image.load() for image in inputs], axis=0)
                archive.writestr(f"{case.case_id}.npy", array_bytes(array))
    spool.seek(0)
    return spool
