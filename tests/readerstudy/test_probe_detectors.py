"""Detector marks of a probe run scored by FROC/wAFROC against the probes where it hallucinated."""

import pytest

from evaluation.probes import services
from readerstudy import probe_detectors
from readerstudy.stats import froc, lesion_marks
from tests.evaluation.probe_support import SIZE, PasteEverywhere, phantom_task
from tests.evaluation.test_probe_sets import built_probe_set, probe_run_of, valid_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def task():
    return phantom_task()


def test_detector_froc_of_a_probe_run_is_scored_against_its_hallucinations(task, tmp_path):
    probe_set = built_probe_set(task)
    model = valid_model(task, PasteEverywhere(), tmp_path, "paste", spatial_shape=[SIZE, SIZE])
    _, probe_run = probe_run_of(model, probe_set)
    score = services.score_probe_run(probe_run, n_resamples=100)
    regions = probe_detectors.hallucinated_regions(score)
    invented = {o["case"] for o in score.outcomes if o["outcome"] == "invented"}
    assert set(regions) == invented and set(regions.values()) == {"invented"}
    scores = probe_detectors.detector_scores(score)
    error = scores["error"]
    assert error["lesions"] == len(invented) and error["cases"] == probe_set.probe_cases.count()
    # the same figure of merit from the stored marks, matched and scored by hand
    centres = {p.case.case_id: p.truth["centre"] for p in probe_set.probe_cases.select_related("case")}
    lesions = [(case, "region", *centres[case]) for case in sorted(invented)]
    marks = [("error", probe_run.pk, *row) for row in score.detector_marks["error"]]
    matched = lesion_marks.match_marks(marks, lesions, probe_detectors.DEFAULT_RADIUS_PX)
    expected = froc.figure_of_merit(matched, [(c, "region", None) for c, *_ in lesions], sorted(centres), "wAFROC")
    assert error["wAFROC"] == pytest.approx(expected[(probe_run.pk, "error")])
    assert 0.0 <= error["wAFROC"] <= 1.0
    # the radiomics OOD detector's marks are scored the same way
    ood_marks = score.detector_marks["radiomics_ood"]
    assert len(ood_marks) <= 5 * probe_set.probe_cases.count() and scores["radiomics_ood"]["lesions"] == len(invented)
    matched = lesion_marks.match_marks([("radiomics_ood", probe_run.pk, *row) for row in ood_marks], lesions, 8.0)
    expected = froc.figure_of_merit(matched, [(c, "region", None) for c, *_ in lesions], sorted(centres), "AFROC")
    assert scores["radiomics_ood"]["AFROC"] == pytest.approx(expected[(probe_run.pk, "radiomics_ood")])
    assert score.config["ood"]["reference_patches"] > 0
