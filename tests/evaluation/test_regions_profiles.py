"""Tasks scored under a profile (fastMRI, SynthRAD2025) and inside a region, through the real evaluation
job: the stored per-case numbers equal `profiles.evaluate` and the published code vendored in
tests/support/refs; a region changes the numbers as it should; the leaderboard names both; and the task's
choices come from the catalogue (model clean, admin form, API), refused with the known names otherwise."""

import math

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from pydicom import examples
from scipy import ndimage

from evaluation.metrics import catalog, profiles, regions
from evaluation.models import CaseResult, CaseStatus, MetricResult
from inference.models import Case, EvaluationProfile, EvaluationRegion, ImageRole, Task
from tests.evaluation.test_evaluation_jobs import evaluate
from tests.support.evaluation import phantom_task, succeeded_run
from tests.support.factories import TaskFactory, add_image, make_task
from tests.support.refs import fastmri_evaluate
from tests.support.refs.synthrad2025_image_metrics import ImageMetrics

RTOL = 1e-6


@pytest.fixture(autouse=True)
def _no_feature_tier(settings):
    settings.MEDGEN_FEATURE_EXTRACTORS = []  # these tests are about the pixel tier


def test_the_catalogue_holds_each_profiles_metrics_as_the_registry_declares_them():
    assert set(EvaluationProfile.values) == set(profiles.PROFILES)
    assert catalog.PROFILE_KEYS["medgen"] == profiles.PROFILES["medgen"].keys
    for name, profile in profiles.PROFILES.items():
        if name == "medgen":
            continue
        assert catalog.PROFILE_KEYS[name] == tuple(f"{name}:{key}" for key in profile.keys)
        assert catalog.PROFILE_URLS[name] == profile.definition_url
        assert catalog.PROFILE_LABELS[name] == profile.label
        for key in profile.keys:
            info = catalog.get(f"{name}:{key}")
            assert info.tier == catalog.PIXEL and info.direction == profile.directions[key]
            assert info.version == profile.version and profile.definition_url in info.definition
            assert info.label.endswith(f"({profile.label})")
            assert catalog.profile_of(info.key) == name
    assert catalog.get("fastmri:ssim").label == "SSIM (fastMRI)"
    assert catalog.profile_of("ssim") == "medgen"


# --------------------------------------------------------------------------------------------
# fastMRI and SynthRAD2025 through the evaluation job


def smooth(rng, shape, scale=4.0):
    return ndimage.gaussian_filter(rng.random(shape), scale)


def add_case(task, case_id, reference, mask=None):
    case = Case.objects.create(dataset=task.dataset, case_id=case_id)
    add_image(case, ImageRole.INPUT, reference[None])
    add_image(case, ImageRole.REFERENCE, reference[None])
    if mask is not None:
        add_image(case, ImageRole.MASK, mask[None].astype(np.float32))
    return case


def outputs_from(predictions):
    return lambda case_id, reference, sample: predictions[case_id][None].astype(np.float32)


def stored(run, case_id):
    return CaseResult.objects.get(run=run, case__case_id=case_id)


@pytest.mark.django_db
def test_a_fastmri_task_stores_fastmris_own_numbers_per_case(client):
    rng = np.random.default_rng(0)
    task = TaskFactory(profile="fastmri")
    mr = examples.mr.pixel_array.astype(np.float32)  # pydicom's MR slice, (64, 64)
    add_case(task, "mr", mr)
    volume = (smooth(rng, (6, 40, 36)) * 1000).astype(np.float32)
    slice_ = (smooth(rng, (48, 44)) * 50 + 10).astype(np.float32)
    add_case(task, "volume", volume)
    add_case(task, "slice", slice_)
    predictions = {
        "volume": volume + rng.normal(0, 20, volume.shape),
        "slice": ndimage.gaussian_filter(slice_, 1.0),
        "mr": ndimage.shift(mr, (0.5, -0.7), order=1, mode="nearest") * 1.05,
    }
    run = succeeded_run(task, outputs_from(predictions))
    evaluation = evaluate(run)
    assert evaluation.config["profile"] == {"name": "fastmri", "version": "1"}
    for case_id, reference in (("volume", volume), ("slice", slice_), ("mr", mr)):
        result = stored(run, case_id)
        assert result.status == CaseStatus.OK and result.region_fraction == 1.0
        output = run.outputs.get(case__case_id=case_id).load()[0]
        ours = profiles.evaluate("fastmri", output, reference)
        gt = reference.astype(np.float64).reshape(-1, *reference.shape[-2:])
        pred = output.astype(np.float64).reshape(gt.shape)
        published = {
            "nmse": float(fastmri_evaluate.nmse(gt, pred)),
            "psnr": float(fastmri_evaluate.psnr(gt, pred)),
            "ssim": float(np.asarray(fastmri_evaluate.ssim(gt, pred)).ravel()[0]),
        }
        assert set(result.values) == {"fastmri:nmse", "fastmri:psnr", "fastmri:ssim"}
        for key in ("nmse", "psnr", "ssim"):
            assert result.value(f"fastmri:{key}") == ours[key]
            assert result.value(f"fastmri:{key}") == pytest.approx(published[key], rel=RTOL)
    ssim = MetricResult.objects.get(run=run, metric="fastmri:ssim")
    per_case = [stored(run, c).value("fastmri:ssim") for c in ("volume", "slice", "mr")]
    assert ssim.value == pytest.approx(np.mean(per_case)) and ssim.n_cases == 3
    assert ssim.version == "1" and ssim.region == "whole image" and not ssim.is_stale
    assert ssim.data_range is None  # fastMRI's peak is each volume's reference.max(), not the task's range
    assert not MetricResult.objects.filter(run=run, metric="ssim").exists()  # no mixing with our SSIM
    page = client.get(run.get_absolute_url()).content.decode()
    assert "profile fastmri (version 1), region: whole image" in page and "SSIM (fastMRI)" in page


def ct_like(rng, shape):
    """A CT-like volume in HU: air at −1000 around a soft-tissue ellipse with bone-bright structure."""
    grid = np.indices(shape).astype(np.float64)
    centre = [(s - 1) / 2 for s in shape]
    body = sum(((g - c) / (0.42 * s)) ** 2 for g, c, s in zip(grid, centre, shape, strict=True)) <= 1
    tissue = 40 + 400 * smooth(rng, shape, 2.0)
    return np.where(body, tissue, -1000.0).astype(np.float32), body


@pytest.mark.django_db
def test_a_synthrad2025_task_scores_inside_each_cases_body_mask_as_their_code_does():
    rng = np.random.default_rng(1)
    task = TaskFactory(profile="synthrad2025", region="case_mask")
    references, masks, predictions = {}, {}, {}
    for case_id, shape in (("ct1", (12, 40, 44)), ("ct2", (10, 36, 40))):
        references[case_id], masks[case_id] = ct_like(rng, shape)
        add_case(task, case_id, references[case_id], masks[case_id])
        predictions[case_id] = references[case_id] + rng.normal(0, 60, shape)
    add_case(task, "no_mask", ct_like(rng, (10, 36, 40))[0])
    predictions["no_mask"] = references["ct1"][:10, :36, :40]
    run = succeeded_run(task, outputs_from(predictions))
    evaluate(run)
    for case_id in ("ct1", "ct2"):
        result = stored(run, case_id)
        output = run.outputs.get(case__case_id=case_id).load()[0]
        published = ImageMetrics().score_patient(
            references[case_id].astype(np.float64), output.astype(np.float64), masks[case_id].astype(np.float64)
        )
        ours = profiles.evaluate("synthrad2025", output, references[case_id], masks[case_id])
        assert result.region_fraction == pytest.approx(masks[case_id].mean())
        for key in ("mae", "psnr", "ms_ssim"):
            assert result.value(f"synthrad2025:{key}") == ours[key]
            assert result.value(f"synthrad2025:{key}") == pytest.approx(published[key], rel=RTOL)
    missing = stored(run, "no_mask")
    assert missing.status == CaseStatus.REFUSED and "no ROI/body mask image" in missing.problem
    mae = MetricResult.objects.get(run=run, metric="synthrad2025:mae")
    assert mae.n_cases == 2 and mae.n_excluded == 1 and mae.region == "each case's ROI/body mask"


@pytest.mark.django_db
def test_synthrad2025_on_2d_images_is_refused_at_save_time_and_per_case_when_saved_anyway():
    task = make_task(n_cases=2, shape=(1, 16, 16))
    task.profile = "synthrad2025"
    with pytest.raises(ValidationError) as caught:
        task.full_clean()
    assert "single-channel 3-D volumes" in str(caught.value.message_dict["profile"])
    task.save()  # a script that skips the checks: the job stores each case with the reason
    run = succeeded_run(task, lambda case_id, reference, sample: reference)
    evaluate(run)
    for result in CaseResult.objects.filter(run=run):
        assert result.status == CaseStatus.REFUSED
        assert "SynthRAD2025 profile refuses this case" in result.problem and "(D, H, W)" in result.problem
    assert not MetricResult.objects.filter(run=run).exists()


# --------------------------------------------------------------------------------------------
# Regions


def background_only(sigma, threshold):
    """An output right outside the region and off by noise of SD `sigma` inside it."""

    def make(case_id, reference, sample):
        rng = np.random.default_rng(int(case_id[-3:]))
        inside = regions.mask_from_reference(reference[0], threshold)
        output = reference.copy()
        output[0][inside] += rng.normal(0, sigma, int(inside.sum())).astype(np.float32)
        return output

    return make


def everywhere(sigma):
    def make(case_id, reference, sample):
        rng = np.random.default_rng([1, int(case_id[-3:])])
        return reference + rng.normal(0, sigma, reference.shape).astype(np.float32)

    return make


def board_ranks(client, task):
    board = client.get(reverse("api-task-leaderboard", args=[task.slug]), {"format": "json"}).json()
    return {row["run"]["name"]: row["rank"] for row in board["rows"]}, board


@pytest.mark.django_db
def test_a_model_that_gets_only_the_background_right_no_longer_looks_good_inside_the_region(client):
    task = phantom_task(data_range=1.0)
    task.primary_metric, task.metrics = "psnr", ["psnr", "ssim", "mse"]
    task.save()
    background = succeeded_run(task, background_only(0.12, 0.05), name="background right")
    honest = succeeded_run(task, everywhere(0.1), name="honest")
    evaluate(background), evaluate(honest)
    ranks, _ = board_ranks(client, task)
    assert ranks == {"background right": 1, "honest": 2}  # the whole image rewards the black background

    task.region, task.region_threshold = EvaluationRegion.REFERENCE_THRESHOLD, 0.05
    task.full_clean()
    task.save()
    ranks, board = board_ranks(client, task)
    assert all(row["values"]["psnr"]["stale"] for row in board["rows"])  # computed in another region
    assert MetricResult.objects.get(run=background, metric="psnr").is_stale
    evaluate(background), evaluate(honest)
    ranks, board = board_ranks(client, task)
    assert ranks == {"background right": 2, "honest": 1}
    assert not MetricResult.objects.get(run=background, metric="psnr").is_stale
    assert board["pixel_convention"]["region"] == "reference > 0.05 (largest component, holes filled)"
    for run in (background, honest):
        for result in CaseResult.objects.filter(run=run).select_related("case"):
            reference = result.case.images.get(role=ImageRole.REFERENCE).load()
            output = run.outputs.get(case=result.case).load()
            inside = regions.mask_from_reference(reference[0], 0.05)
            error = (output.astype(np.float64) - reference)[0][inside]
            assert result.region_fraction == pytest.approx(inside.mean())
            assert result.value("mse") == pytest.approx(np.mean(error**2), rel=1e-9)
            assert result.value("psnr") == pytest.approx(10 * math.log10(1 / np.mean(error**2)), rel=1e-9)
            assert result.value("ssim") == pytest.approx(
                regions.masked_ssim(output, reference, inside, data_range=1.0), rel=1e-12
            )


@pytest.mark.django_db
def test_the_leaderboard_names_the_profile_with_its_definition_and_the_region(client):
    task = TaskFactory(profile="fastmri", primary_metric="fastmri:ssim")
    add_case(task, "case001", (smooth(np.random.default_rng(2), (32, 32)) + 1).astype(np.float32))
    evaluate(succeeded_run(task, everywhere(0.01)))
    page = client.get(reverse("task-leaderboard", args=[task.slug])).content.decode()
    assert "Scored the fastMRI way" in page and 'id="pixel-region">whole image<' in page
    assert f'href="{catalog.PROFILE_URLS["fastmri"]}" id="profile-definition"' in page
    assert "SSIM (fastMRI)" in page
    _, board = board_ranks(client, task)
    assert board["pixel_convention"]["definition_url"] == profiles.PROFILES["fastmri"].definition_url
    assert board["ranking"]["primary_metric"] == "fastmri:ssim"
    assert [column["key"] for column in board["columns"] if column["tier"] == "pixel"] == [
        "fastmri:nmse",
        "fastmri:psnr",
        "fastmri:ssim",
    ]


# --------------------------------------------------------------------------------------------
# Choices from the catalogue: model clean, admin form, API


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"metrics": ["vgg_loss"], "primary_metric": "SSIM"},
            "metrics",
            "Unknown metric(s) vgg_loss. Known: psnr, ssim",
        ),
        ({"metrics": ["vgg_loss"], "primary_metric": "SSIM"}, "primary_metric", "Unknown metric 'SSIM'. Known: psnr"),
        ({"profile": "brats"}, "profile", "Unknown profile 'brats'. Known: medgen, fastmri, synthrad2025."),
        ({"region": "brain"}, "region", "Unknown region 'brain'. Known: whole, case_mask, reference_threshold."),
        ({"profile": "fastmri", "metrics": ["ssim"]}, "metrics", "ssim: not of the task's profile fastMRI"),
        ({"profile": "fastmri", "primary_metric": "psnr"}, "primary_metric", "fastmri:nmse, fastmri:psnr"),
        ({"metrics": ["fastmri:ssim"]}, "metrics", "not of the task's profile MedGen Eval (medgen)"),
        ({"profile": "fastmri", "region": "case_mask"}, "region", "The fastMRI profile takes no region"),
        ({"region": "reference_threshold"}, "region_threshold", "needs its threshold"),
        ({"region_threshold": 0.1}, "region_threshold", "used only with region 'reference_threshold'"),
    ],
)
def test_model_clean_refuses_what_the_catalogue_does_not_know(fields, field, message):
    task = make_task(n_cases=1)
    for name, value in fields.items():
        setattr(task, name, value)
    with pytest.raises(ValidationError) as caught:
        task.full_clean()
    assert message in " ".join(caught.value.message_dict[field])


@pytest.mark.django_db
def test_model_clean_accepts_a_profiles_own_metrics_and_a_region():
    task = make_task(n_cases=1)
    task.profile, task.metrics, task.primary_metric = "fastmri", ["fastmri:ssim", "frd"], "fastmri:ssim"
    task.full_clean()
    task.profile, task.metrics, task.primary_metric = "medgen", ["psnr"], "psnr"
    task.region, task.region_threshold = "reference_threshold", 0.2
    task.full_clean()


@pytest.mark.django_db
def test_the_admin_form_refuses_unknown_profiles_regions_and_foreign_metrics(admin_client):
    task = make_task(n_cases=1, metrics=["psnr"], primary_metric="psnr")
    form = {
        "slug": task.slug, "name": task.name, "kind": task.kind, "dataset": task.dataset_id, "description": "",
        "metrics": '["ssim"]', "primary_metric": "ssim", "ranking": "primary", "profile": "fastmri",
        "region": "case_mask", "region_threshold": "",
    }  # fmt: skip
    page = admin_client.post(f"/admin/inference/task/{task.pk}/change/", form).content.decode()
    assert "ssim: not of the task&#x27;s profile fastMRI (fastmri), whose pixel metrics are fastmri:nmse" in page
    assert "The fastMRI profile takes no region" in page
    page = admin_client.post(f"/admin/inference/task/{task.pk}/change/", {**form, "profile": "brats"}).content
    assert b"Unknown profile &#x27;brats&#x27;. Known: medgen, fastmri, synthrad2025." in page
    task = Task.objects.get(pk=task.pk)
    assert (task.profile, task.region, task.metrics) == ("medgen", "whole", ["psnr"])
    good = {**form, "metrics": '["fastmri:ssim"]', "primary_metric": "fastmri:ssim", "region": "whole"}
    assert admin_client.post(f"/admin/inference/task/{task.pk}/change/", good).status_code == 302
    task.refresh_from_db()
    assert (task.profile, task.metrics, task.primary_metric) == ("fastmri", ["fastmri:ssim"], "fastmri:ssim")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"profile": "brats"}, "profile", 'Unknown profile "brats". Known: medgen, fastmri, synthrad2025.'),
        ({"region": "brain"}, "region", 'Unknown region "brain". Known: whole, case_mask, reference_threshold.'),
        ({"profile": "fastmri"}, "metrics", "psnr, ssim: not of the task's profile fastMRI"),
        ({"profile": "fastmri", "metrics": [], "region": "reference_threshold", "region_threshold": 0.1}, "region",
         "The fastMRI profile takes no region"),
        ({"profile": "synthrad2025", "metrics": [], "primary_metric": ""}, "profile", "single-channel 3-D volumes"),
    ],
)  # fmt: skip
def test_the_api_refuses_unknown_choices_with_a_400_and_the_known_names(staff_api, change, field, message):
    task = make_task(n_cases=1, metrics=["psnr", "ssim"], primary_metric="psnr")
    response = staff_api.patch(f"/api/tasks/{task.slug}/", change, format="json")
    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()["errors"][field])
    task.refresh_from_db()
    assert (task.profile, task.region, task.metrics) == ("medgen", "whole", ["psnr", "ssim"])


@pytest.mark.django_db
def test_the_api_saves_a_profile_with_its_metrics_and_shows_them(staff_api):
    task = make_task(n_cases=1, metrics=["psnr"], primary_metric="psnr")
    change = {"profile": "fastmri", "metrics": ["fastmri:psnr"], "primary_metric": "fastmri:psnr"}
    response = staff_api.patch(f"/api/tasks/{task.slug}/", change, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["profile"] == "fastmri" and response.json()["region"] == "whole"


@pytest.mark.django_db
def test_a_case_whose_region_is_empty_or_at_the_border_is_refused_with_the_reason():
    task = TaskFactory(data_range=1.0, region="reference_threshold", region_threshold=0.5, metrics=["mse", "ssim"])
    rng = np.random.default_rng(3)
    dark = (rng.random((32, 32)) * 0.4).astype(np.float32)
    rim = dark.copy()
    rim[:3, :3] = 0.9  # a region in the corner: no voxel where the SSIM window fits
    centre = dark.copy()
    centre[10:22, 10:22] = 0.9
    for case_id, reference in (("dark001", dark), ("rim002", rim), ("centre003", centre)):
        add_case(task, case_id, reference)
    run = succeeded_run(task, everywhere(0.05))
    evaluate(run)
    assert stored(run, "dark001").status == CaseStatus.REFUSED
    assert "no voxel of the reference is above the region threshold 0.5" in stored(run, "dark001").problem
    assert stored(run, "rim002").status == CaseStatus.REFUSED
    assert "farther than 5 voxels from the image border, where ssim" in stored(run, "rim002").problem
    assert stored(run, "centre003").status == CaseStatus.OK
    assert stored(run, "centre003").region_fraction == pytest.approx(144 / 1024)
    assert MetricResult.objects.get(run=run, metric="mse").n_excluded == 2
