"""Probe sets built by their job, probe runs linked to their main run, and their scores (in-process jobs)."""

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from sklearn.metrics import roc_auc_score

from core.errors import Conflict
from core.models import JobStatus
from demo import phantom
from evaluation.leaderboard.queries import succeeded_runs
from evaluation.models import Evaluation, ProbeCase, ProbeScore
from evaluation.probes import construct, scoring, selectors, services
from evaluation.probes.build import probed_positions
from inference.models import CaseOutput, ModelStatus, Run, TaskKind
from inference.services import artifacts, runs
from tests.evaluation.probe_support import SIZE, TISSUE_CONFIG, NoisyPasteEverywhere, PasteEverywhere, phantom_task
from tests.support.factories import NoisyScale, Scale, save_torchscript
from tests.support.jobs import run_job, validate

pytestmark = pytest.mark.django_db


def valid_model(task, module, tmp_path, name, **fields):
    path = save_torchscript(module, tmp_path / f"{name}.pt")
    fields.setdefault("spatial_shape", [None, None])
    model = artifacts.register_model(path, name=name, task=task, **fields)
    assert validate(model) == ModelStatus.VALID
    model.refresh_from_db()
    return model


def built_probe_set(task, **options):
    probe_set = services.request_probe_set(task, seed=3, config=TISSUE_CONFIG, **options)
    assert probe_set.status == JobStatus.QUEUED
    assert run_job(probe_set) == "succeeded", probe_set.error
    probe_set.refresh_from_db()
    return probe_set


def probe_run_of(model, probe_set):
    main = runs.create_run(model)
    assert run_job(main) == "succeeded"
    main.refresh_from_db()
    probe_run = services.start_probe_run(main, probe_set)
    assert probe_run.probe_of == main and probe_run.dataset == probe_set.dataset
    assert run_job(probe_run) == "succeeded", Run.objects.get(pk=probe_run.pk).error
    probe_run.refresh_from_db()
    return main, probe_run


def scored_paste_runs(task, probe_set, tmp_path, n_resamples=200):
    """{"paste": (main, probe run), "noisy": …}: a deterministic model that pastes a lesion everywhere and a
    3-sample stochastic one, each run, probed on `probe_set` and scored."""
    paste = valid_model(task, PasteEverywhere(), tmp_path, "paste", spatial_shape=[SIZE, SIZE])
    noisy = valid_model(
        task, NoisyPasteEverywhere(), tmp_path, "noisy", spatial_shape=[SIZE, SIZE], stochastic=True,
        samples_per_case=3,
    )  # fmt: skip
    runs = {name: probe_run_of(model, probe_set) for name, model in (("paste", paste), ("noisy", noisy))}
    for _, probe_run in runs.values():
        services.score_probe_run(probe_run, n_resamples=n_resamples)
    return runs


@pytest.fixture
def task():
    return phantom_task()


def test_the_job_stores_every_probe_with_its_truth(task):
    probe_set = built_probe_set(task)
    probes = list(ProbeCase.objects.filter(probe_set=probe_set).select_related("case", "source"))
    assert probe_set.dataset is not None and not probe_set.dataset.is_public
    n_cases = task.dataset.cases.count()
    assert probe_set.dataset.cases.count() == len(probes) >= 3 * n_cases
    # every kind of every case was made, or the job says why not
    skipped = sum(len(why) for why in probe_set.skipped.values())
    assert len(probes) + skipped == len(construct.KINDS) * n_cases
    kinds = {p.kind for p in probes}
    assert kinds == set(construct.KINDS)
    for probe in probes:
        region = probe.truth_mask_array()
        assert region.sum() == probe.truth["area_px"] > 0
        assert probe.expected == construct.EXPECTED[probe.kind] == probe.case.metadata["expected"]
        tissue = probe.source.image("mask").load()[0]
        row, col = (int(round(v)) for v in probe.truth["centre"])
        site = {"inserted_csf": phantom.CSF, "inserted_outside": 0, "control": phantom.WHITE_MATTER}
        if probe.kind in site:
            assert tissue[row, col] == site[probe.kind]
        # the stored truth image carries the change: the inserted lesion's contrast, or the removed one's absence
        truth_image = probe.case.image("reference").load()
        contrast = construct.region_contrast(truth_image, region)
        if probe.kind in construct.INSERTED:
            assert contrast == pytest.approx(probe.truth["contrast"], rel=1e-4)
        elif probe.kind == "removed":
            # gone by the scoring's own rule: the truth image itself is scored faithful there
            assert abs(contrast) < scoring.PRESENT_FRACTION * abs(probe.truth["contrast"])
    assert probe_set.config["levels_used"][1] > 0.5  # the phantoms' T2 lesion level
    # seeded: a second probe set with the same seed makes the same probes
    again = built_probe_set(task)
    first = sorted((p.case.case_id, p.truth["centre"]) for p in probes)
    second = sorted((p.case.case_id, p.truth["centre"]) for p in again.probe_cases.select_related("case"))
    assert first == second


def test_an_identity_model_scores_no_invented_structure_and_probe_runs_stay_off_the_board(task, tmp_path):
    probe_set = built_probe_set(task)
    model = valid_model(task, Scale(1.0), tmp_path, "copy")
    main, probe_run = probe_run_of(model, probe_set)
    assert CaseOutput.objects.filter(run=probe_run).count() == probe_set.probe_cases.count()
    score = services.score_probe_run(probe_run, n_resamples=200)
    assert score.index["index"]["estimate"] == 0.0
    assert score.index["counts"]["invented"] == 0 and score.index["counts"]["omitted"] == 0
    assert len(score.outcomes) == probe_set.probe_cases.count()
    assert "error" in score.detector_marks and "sd" not in score.detector_marks
    assert not Evaluation.objects.filter(run=probe_run).exists()
    assert [r.pk for r in succeeded_runs(task)] == [main.pk]
    # the same probe run is returned while it stands; a probe run has no probe runs
    assert services.start_probe_run(main, probe_set).pk == probe_run.pk
    with pytest.raises(services.ProbeError, match="probe run has no probe runs"):
        services.start_probe_run(probe_run, probe_set)
    # a probe run that cannot be scored is logged on the run, not raised (its follow-ups would be re-sent)
    broken = probe_set.probe_cases.first()
    broken.truth = {**broken.truth, "contrast": 0.0}
    broken.save()
    services.on_run_finished(sender=Run, job_id=probe_run.pk, status=JobStatus.SUCCEEDED)
    services.on_run_finished(sender=Run, job_id=probe_run.pk, status=JobStatus.SUCCEEDED)
    logged = Run.objects.get(pk=probe_run.pk).log
    assert logged.count("not scored against its probes") == 1 and "contrast is zero" in logged


def test_a_model_that_pastes_lesions_everywhere_scores_a_high_index(task, tmp_path):
    probe_set = built_probe_set(task)
    model = valid_model(task, PasteEverywhere(), tmp_path, "paste", spatial_shape=[SIZE, SIZE])
    _, probe_run = probe_run_of(model, probe_set)
    score = services.score_probe_run(probe_run, n_resamples=500)
    assert score.index["index"]["estimate"] >= 0.7 and score.index["index"]["low"] > 0.3
    assert ProbeScore.objects.get(run=probe_run).index == score.index
    shown = selectors.hallucination_indices(task)
    assert list(shown) == [probe_run.probe_of_id] and shown[probe_run.probe_of_id]["probe_run"] == probe_run.pk
    assert shown[probe_run.probe_of_id]["index"] == score.index["index"]


def test_a_stochastic_model_samples_each_probe_and_gets_sd_marks(task, tmp_path):
    probe_set = built_probe_set(task, kinds=["inserted_plausible", "removed", "control"])
    model = valid_model(task, NoisyScale(), tmp_path, "noisy", stochastic=True, samples_per_case=3)
    _, probe_run = probe_run_of(model, probe_set)
    assert probe_run.samples_per_case == 3
    assert CaseOutput.objects.filter(run=probe_run).count() == 3 * probe_set.probe_cases.count()
    score = services.score_probe_run(probe_run, n_resamples=100)
    assert {o["sample"] for o in score.outcomes} == {0, 1, 2}
    assert score.detector_marks["sd"] and score.detector_marks["error"]
    assert score.uncertainty["cases"] == probe_set.probe_cases.count()


def stochastic_hallucinating_run(task, tmp_path, probe_set):
    model = valid_model(
        task, NoisyPasteEverywhere(), tmp_path, "noisy-paste", spatial_shape=[SIZE, SIZE], stochastic=True,
        samples_per_case=3,
    )  # fmt: skip
    return probe_run_of(model, probe_set)


def test_the_uncertainty_checks_of_a_stochastic_run_from_its_outputs(task, tmp_path):
    probe_set = built_probe_set(task, kinds=["inserted_plausible", "removed", "control"])
    _, probe_run = stochastic_hallucinating_run(task, tmp_path, probe_set)
    checks = services.score_probe_run(probe_run, n_resamples=100).uncertainty
    # recomputed independently: the SD over the stored samples, labels from the outcomes' majority, sklearn's AUC
    outcomes = ProbeScore.objects.get(run=probe_run).outcomes
    values, labels = [], []
    for probe in probe_set.probe_cases.select_related("case").order_by("case__case_id"):
        case = probe.case.case_id
        samples = np.stack([o.load() for o in CaseOutput.objects.filter(run=probe_run, case=probe.case)])
        values.append(samples.astype(np.float64).std(axis=0).ravel())
        flags = [o["outcome"] in ("invented", "omitted") for o in outcomes if o["case"] == case]
        labels.append((probe.truth_mask_array() & (2 * sum(flags) >= len(flags))).ravel())
    values, labels = np.concatenate(values), np.concatenate(labels)
    assert 0 < labels.sum() < len(labels)
    assert checks["sd_auc"] == pytest.approx(roc_auc_score(labels, values), abs=1e-6)
    assert checks["hallucinated_pixels"] == labels.sum()
    top = checks["by_threshold"][2]
    tau = np.quantile(values, top["quantile"])
    assert top["p_hallucination"] == pytest.approx(labels[values > tau].mean(), abs=1e-6)


def test_reconstruction_probes_are_stored_with_resampled_kspace():
    task = phantom_task(n_cases=2, kind=TaskKind.RECONSTRUCTION)
    probe_set = built_probe_set(task, kinds=["inserted_plausible", "removed"])
    for probe in probe_set.probe_cases.select_related("case", "source"):
        kspace = probe.case.image("input").load()
        original = probe.source.image("input").load()
        mask = (original[0] != 0) | (original[1] != 0)
        expected = phantom.undersample(probe.case.image("reference").load()[0], mask.astype(np.float32))
        np.testing.assert_allclose(kspace, expected, atol=2e-6)


def test_probe_runs_need_a_built_probe_set_of_the_same_task(task, tmp_path):
    model = valid_model(task, Scale(1.0), tmp_path, "copy")
    main = runs.create_run(model)
    run_job(main)
    main.refresh_from_db()
    pending = services.request_probe_set(task)
    with pytest.raises(Conflict, match="can be run on once it has been built"):
        services.start_probe_run(main, pending)
    other = built_probe_set(phantom_task(n_cases=1, seed0=2003))
    with pytest.raises(services.ProbeError, match="probe set is of task"):
        services.start_probe_run(main, other)
    with pytest.raises(services.ProbeError, match="Unknown probe kind"):
        services.request_probe_set(task, kinds=["teleported"])


def test_the_probe_task_command_builds_then_starts_probe_runs(task, tmp_path):
    model = valid_model(task, Scale(1.0), tmp_path, "copy")
    main = runs.create_run(model)
    run_job(main)
    out = io.StringIO()
    options = {"kinds": "inserted_plausible,control", "config": json.dumps(TISSUE_CONFIG), "stdout": out}
    call_command("probe_task", task.slug, **options)
    assert "queued" in out.getvalue() and "run again once it has been built" in out.getvalue()
    probe_set = task.probe_sets.get()
    assert probe_set.kinds == ["inserted_plausible", "control"] and probe_set.config == TISSUE_CONFIG
    run_job(probe_set)
    out = io.StringIO()
    call_command("probe_task", task.slug, **{**options, "stdout": out})
    probe_run = Run.objects.get(probe_of=main)
    assert f"probe runs {probe_run.pk}" in out.getvalue() and task.probe_sets.count() == 1
    with pytest.raises(CommandError, match="No task"):
        call_command("probe_task", "nope")


def test_max_cases_probes_a_seeded_sample_of_the_test_cases():
    assert probed_positions(4, None, 3) == probed_positions(4, 9, 3) == {0, 1, 2, 3}
    assert probed_positions(40, 8, 3) == probed_positions(40, 8, 3) != probed_positions(40, 8, 4)
    assert len(probed_positions(40, 8, 3)) == 8
    task = phantom_task(n_cases=4)
    full = built_probe_set(task, kinds=["control", "inserted_outside"])
    config = {**TISSUE_CONFIG, "max_cases": 2}
    sample = services.request_probe_set(task, seed=3, kinds=["control", "inserted_outside"], config=config)
    assert run_job(sample) == "succeeded", sample.error
    sample.refresh_from_db()
    case_ids = sorted(task.dataset.cases.values_list("case_id", flat=True))
    chosen = {case_ids[i] for i in probed_positions(4, 2, 3)}
    made = {(p.source.case_id, p.kind): p.truth["centre"] for p in sample.probe_cases.select_related("source")}
    # only the chosen cases are probed, each kind made or said why not; and they are the full set's probes
    assert {case for case, _kind in made} <= chosen
    assert len(made) + sum(len(why) for why in sample.skipped.values()) == 2 * len(chosen)
    everything = {(p.source.case_id, p.kind): p.truth["centre"] for p in full.probe_cases.select_related("source")}
    assert made == {key: everything[key] for key in made}
    for bad in (0, -1, 2.5, "3", True):
        with pytest.raises(services.ProbeError, match="max_cases is a number of test cases"):
            services.request_probe_set(task, config={"max_cases": bad})
