"""Image features for the feature tier: extracted a batch at a time, cached as `FeatureSet` files.

A task's real images (its reference set) are extracted once per extractor version and intensity
window and shared by every run of the task; a run's own features are kept beside its results (one
set per extractor, replaced when the version or window changes). Files are `.npz` (no pickle)
with `features` (n, d) float64 and `case_pks`.
"""

import hashlib
import io

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from inference.models import ImageRole

from .metrics.extractors import ExtractorUnavailable
from .models import FeatureSet
from .selectors import case_images


def extract(extractor, items, range_pair):
    """(n, d) float64 features of `(load, shape, spacing)` items, in their order: loaded a batch at a time,
    grouped by shape and spacing (an extractor call takes one of each)."""
    batch_size = settings.MEDGEN_EVALUATION_BATCH_SIZE
    features = None
    groups = {}
    for i, (_, shape, spacing) in enumerate(items):
        groups.setdefault((tuple(shape), tuple(spacing or ())), []).append(i)
    for (_, spacing), indices in groups.items():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = np.stack([items[i][0]() for i in chunk]).astype(np.float32)
            values = extractor.extract(batch, data_range=range_pair, spacing=spacing or None)
            if features is None:
                features = np.empty((len(items), values.shape[1]), dtype=np.float64)
            features[chunk] = values
    return features


def feature_set_version(extractor, range_pair):
    """Cached features depend on the extractor's version and on the intensity window it was given."""
    return f"{extractor.spec.version}|{range_pair[0]:.9g}:{range_pair[1]:.9g}"


def reference_features(task, extractor, range_pair):
    """(case pks, features) of the task's real images, computed once per extractor version and cached."""
    dataset = task.reference_dataset or task.dataset
    version = feature_set_version(extractor, range_pair)
    cached = FeatureSet.objects.filter(dataset=dataset, extractor=extractor.spec.name, version=version).first()
    if cached:
        with cached.file.open("rb") as handle:
            data = np.load(handle, allow_pickle=False)
            return list(data["case_pks"]), data["features"]
    items, pks = [], []
    for case in dataset.cases.order_by("case_id").prefetch_related("images"):
        images = case_images(case, ImageRole.REFERENCE)
        if not images:  # a separate set of real images may hold them as its cases' inputs
            images = [im for im in case.images.all() if im.role == ImageRole.INPUT and im.index == 0]
        if not images:
            continue
        shape = [sum(im.shape[0] for im in images), *images[0].shape[1:]]
        items.append((lambda images=images: np.concatenate([im.load() for im in images]), shape, images[0].spacing))
        pks.append(case.pk)
    if len(items) < 2:
        raise ExtractorUnavailable("The reference set has fewer than two images.")
    features = extract(extractor, items, range_pair)
    _save_feature_set({"dataset": dataset}, extractor, version, pks, features)
    return pks, features


def save_run_features(run, extractor, range_pair, case_pks, features):
    """Keep the run's features of one extractor (those of another version or window are deleted)."""
    version = feature_set_version(extractor, range_pair)
    for old in FeatureSet.objects.filter(run=run, extractor=extractor.spec.name).exclude(version=version):
        old.file.delete(save=False)
        old.delete()
    return _save_feature_set({"run": run}, extractor, version, case_pks, features)


def _save_feature_set(owner, extractor, version, case_pks, features):
    buffer = io.BytesIO()
    np.savez(buffer, features=features, case_pks=np.asarray(case_pks, dtype=np.int64))
    key = "-".join(f"{k}{v.pk}" for k, v in owner.items())
    tag = hashlib.sha256(version.encode()).hexdigest()[:12]
    name = f"{key}-{extractor.spec.name}-{tag}.npz"
    with transaction.atomic():
        existing = (
            FeatureSet.objects.select_for_update()
            .filter(extractor=extractor.spec.name, version=version, **owner)
            .first()
        )
        feature_set = existing or FeatureSet(extractor=extractor.spec.name, version=version, **owner)
        if feature_set.file:
            feature_set.file.delete(save=False)
        feature_set.file.save(name, ContentFile(buffer.getvalue()), save=False)
        feature_set.n, feature_set.dim = features.shape
        feature_set.save()
    return feature_set
