"""The feature tier with the CLIP and DINOv2 extractors: a task listing their metrics gets them computed when
their weights are configured, else the page names the settings. The stored numbers are checked against the
reference models (vendored OpenAI CLIP and DINOv2) run here on the same images and weights."""

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from evaluation.metrics import catalog
from evaluation.metrics.extractors import REGISTRY
from evaluation.metrics.feature import frechet_distance_from_features
from evaluation.models import MetricResult
from inference.models import ImageRole
from tests.evaluation.metrics.test_clip_dinov2 import _clip_transform, _dgm_eval_dinov2_transform
from tests.evaluation.test_evaluation_jobs import evaluate
from tests.support.evaluation import noisy, phantom_task, succeeded_run
from tests.support.generated_weights import random_dinov2, random_openai_clip, save_openai_clip_torchscript
from tests.support.refs import cmmd_distance, openai_clip_model

METRICS = ["psnr", "clip_similarity", "cmmd", "fd_clip", "fd_dinov2"]


def _task(n_cases=6):
    task = phantom_task(n_cases=n_cases, data_range=1.5)
    task.metrics = METRICS
    task.save()
    return task


@pytest.mark.django_db
def test_listed_metrics_without_weights_say_which_settings_to_set(settings, client):
    settings.MEDGEN_FEATURE_EXTRACTORS = []
    settings.MEDGEN_CLIP_WEIGHTS = ""
    settings.MEDGEN_DINOV2_WEIGHTS = ""
    run = succeeded_run(_task(3), noisy(0.05))
    evaluation = evaluate(run)
    assert "MEDGEN_CLIP_WEIGHTS" in evaluation.unavailable["clip"] and "ViT-B-32.pt" in evaluation.unavailable["clip"]
    assert "MEDGEN_DINOV2_WEIGHTS" in evaluation.unavailable["dinov2"]
    assert not MetricResult.objects.filter(run=run, tier=catalog.FEATURE).exists()
    assert MetricResult.objects.filter(run=run, metric="psnr").exists()
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'id="evaluation-unavailable"' in page and "MEDGEN_CLIP_WEIGHTS" in page and "MEDGEN_DINOV2_WEIGHTS" in page


@pytest.mark.django_db
def test_clip_and_dinov2_metrics_equal_the_reference_models(settings, tmp_path, monkeypatch, client):
    clip_path = save_openai_clip_torchscript(random_openai_clip(), tmp_path / "ViT-B-32.pt")
    dino = random_dinov2()
    dino_path = tmp_path / "dinov2_vitb14_pretrain.pth"
    torch.save(dino.state_dict(), dino_path)
    # The generated file stands in for ViT-B-32.pt: the spec declares its hash (the real one's is tested apart).
    spec = dataclasses.replace(REGISTRY["clip"], weights_sha256=hashlib.sha256(clip_path.read_bytes()).hexdigest())
    monkeypatch.setitem(REGISTRY._specs, "clip", spec)
    settings.MEDGEN_FEATURE_EXTRACTORS = []
    settings.MEDGEN_CLIP_WEIGHTS = str(clip_path)
    settings.MEDGEN_DINOV2_WEIGHTS = str(dino_path)
    settings.MEDGEN_DINOV2_WEIGHTS_SHA256 = hashlib.sha256(dino_path.read_bytes()).hexdigest()
    settings.MEDGEN_FEATURE_BOOTSTRAP_RESAMPLES = 20
    settings.MEDGEN_BOOTSTRAP_RESAMPLES = 200

    task = _task()
    run = succeeded_run(task, noisy(0.1))
    evaluation = evaluate(run)
    assert evaluation.unavailable == {}
    stored = {(r.metric, r.extractor): r for r in MetricResult.objects.filter(run=run, tier=catalog.FEATURE)}
    assert set(stored) == {("fd_clip", "clip"), ("cmmd", "clip"), ("clip_similarity", "clip"), ("fd_dinov2", "dinov2")}

    lo = min(case.images.get(role=ImageRole.REFERENCE).intensity_min for case in task.dataset.cases.all())
    cases = list(task.dataset.cases.order_by("case_id"))

    def pixels(arrays):
        return [np.rint(np.clip((a[0] - lo) / 1.5, 0, 1) * 255).astype(np.uint8) for a in arrays]

    outputs = pixels([run.outputs.get(case=case).load() for case in cases])
    refs = pixels([case.images.get(role=ImageRole.REFERENCE).load() for case in cases])
    with open(clip_path, "rb") as handle:
        clip_model = openai_clip_model.build_model(torch.jit.load(handle, map_location="cpu").state_dict()).float()
    with torch.no_grad():
        g_clip, r_clip = (
            clip_model.encode_image(torch.stack([_clip_transform(p) for p in s])).double().numpy()
            for s in (outputs, refs)
        )
        g_dino, r_dino = (
            dino(torch.stack([_dgm_eval_dinov2_transform(p) for p in s])).double().numpy() for s in (outputs, refs)
        )

    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    cosine = 100 * np.sum(unit(g_clip) * unit(r_clip), axis=1)  # torchmetrics' clip score per pair
    similarity = stored[("clip_similarity", "clip")]
    assert similarity.value == pytest.approx(max(cosine.mean(), 0), rel=1e-5)
    assert similarity.ci_low <= similarity.value <= similarity.ci_high and similarity.n_cases == len(cases)
    assert stored[("cmmd", "clip")].value == pytest.approx(cmmd_distance.mmd(unit(g_clip), unit(r_clip)), rel=1e-4)
    fd_clip = stored[("fd_clip", "clip")]
    assert fd_clip.value == pytest.approx(frechet_distance_from_features(g_clip, r_clip), rel=1e-4)
    assert fd_clip.ci_low <= fd_clip.value <= fd_clip.ci_high
    assert stored[("fd_dinov2", "dinov2")].value == pytest.approx(
        frechet_distance_from_features(g_dino, r_dino), rel=1e-4
    )
    page = client.get(run.get_absolute_url()).content.decode()
    for label in ("CLIP similarity", "CMMD", "FD_CLIP", "FD_DINOv2"):
        assert label in page, label
