"""Hallucination marks: readers mark regions of a synthetic image that look implausible (anatomy that cannot be).

Records are (reader, model, image, n_marks): how many marks a reader left on one image (0 when the reader saw the
image and marked nothing; such zero records must be present, or the rates are overstated). Per model this gives the
mean number of marks per image read, with a CI from a bootstrap over readers and images (both random samples; see
agreement.two_way_bootstrap_means), and the fraction of reads with at least one mark.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np

from .agreement import _index, two_way_bootstrap_means

__all__ = ["MarkSummary", "hallucination_marks"]


@dataclass(frozen=True)
class MarkSummary:
    """Marks on one model's images.

    marks_per_image: mean marks per read (reader × image), with marks_per_image_ci (two-way bootstrap, percentile).
    fraction_marked: fraction of reads with ≥ 1 mark, with fraction_marked_ci from the same resamples.
    fraction_images_any: fraction of images that at least one reader marked (no CI: it grows with the number of
    readers, so compare it only between models read by the same readers).
    """

    model: Hashable
    n_reads: int
    n_images: int
    n_readers: int
    marks_per_image: float
    marks_per_image_ci: tuple[float, float]
    fraction_marked: float
    fraction_marked_ci: tuple[float, float]
    fraction_images_any: float


def hallucination_marks(records: Iterable[tuple], n_boot: int = 2000, seed: int = 0, conf_level: float = 0.95) -> dict:
    """Per-model hallucination-mark summary: model → MarkSummary, in sorted model order.

    records: (reader, model, image, n_marks), n_marks a non-negative integer, at most one record per reader and
    image. Images are model-specific (an image belongs to one model). The CIs resample readers and the model's
    images independently ``n_boot`` times; models, in sorted order, draw from one ``numpy.random.default_rng(seed)``.
    """
    rows = [tuple(rec) for rec in records]
    if not rows:
        raise ValueError("no records")
    readers_col, models_col, images_col, marks_col = zip(*rows, strict=True)
    marks = np.asarray(marks_col, dtype=float)
    if np.any(marks < 0) or np.any(np.mod(marks, 1) != 0):
        raise ValueError("n_marks must be non-negative integers")
    readers, ri = _index(readers_col)
    models, mi = _index(models_col)
    images, ii = _index(images_col)
    model_of: dict = {}
    for image, model in zip(images_col, models_col, strict=True):
        if model_of.setdefault(image, model) != model:
            raise ValueError(f"image {image!r} appears under more than one model")
    if np.bincount(ri * len(images) + ii).max() > 1:
        raise ValueError("a reader has more than one record for the same image")

    rng = np.random.default_rng(seed)
    tail = (1 - conf_level) / 2 * 100
    out = {}
    for k, model in enumerate(models):
        rows_k = mi == k
        # This model's images only: resampling the union of all models' images would waste work on empty cells.
        own, local = np.unique(ii[rows_k], return_inverse=True)
        values = np.zeros((len(readers), own.size))
        seen = np.zeros(values.shape, dtype=bool)
        values[ri[rows_k], local] = marks[rows_k]
        seen[ri[rows_k], local] = True
        stacked = np.stack([values, (values > 0).astype(float)])  # the same draws for both statistics
        boots = two_way_bootstrap_means(stacked, np.stack([seen, seen]), n_boot, rng)
        lo, hi = np.nanpercentile(boots, [tail, 100 - tail], axis=0)
        read_marks = values[seen]
        out[model] = MarkSummary(
            model=model,
            n_reads=int(seen.sum()),
            n_images=int(own.size),
            n_readers=int(seen.any(axis=1).sum()),
            marks_per_image=float(read_marks.mean()),
            marks_per_image_ci=(float(lo[0]), float(hi[0])),
            fraction_marked=float((read_marks > 0).mean()),
            fraction_marked_ci=(float(lo[1]), float(hi[1])),
            fraction_images_any=float((values > 0).any(axis=0).mean()),
        )
    return out
