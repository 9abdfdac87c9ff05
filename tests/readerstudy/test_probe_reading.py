"""Probe-mode hallucination studies: matching readers' marks to the probes where each run hallucinated, the
items and their blinding, and the FROC analysis recomputed independently from the exported answers."""

import csv
import io
import json
import math
import re

import numpy as np
import pytest

from evaluation.models import ProbeCase, ProbeScore
from inference.services import participation
from readerstudy import analysis, probe_detectors, probe_reading
from readerstudy.answers import InvalidAnswer, validate
from readerstudy.errors import StudyError
from readerstudy.models import Assignment, ItemKind, ReaderStudy
from readerstudy.services import build, reading, studies
from readerstudy.stats import froc, lesion_marks
from tests.support.study_data import make_reader

# --- Matching (no database) ------------------------------------------------------------------------


def point(x, y, rating):
    return {"type": "point", "slice": 0, "points": [[x, y]], "rating": rating}


def test_viewer_marks_are_pixel_corners_so_a_pixel_centre_is_index_plus_a_half():
    assert probe_reading.mark_position(point(10.5, 20.5, 3)) == (20.0, 10.0)  # (row, col) of pixel (20, 10)
    box = {"type": "box", "slice": 0, "points": [[8.0, 18.0], [13.0, 23.0]]}
    assert probe_reading.mark_position(box) == (20.0, 10.0)  # a box counts at its centre


def test_a_mark_inside_the_radius_localises_the_lesion_and_one_outside_does_not():
    lesions = [("c1", "region", 20.0, 10.0)]
    inside = ("r", "m", "c1", *probe_reading.mark_position(point(10.5 + 8.0, 20.5, 4)), 4)  # exactly 8 px
    outside = ("r", "m", "c1", *probe_reading.mark_position(point(10.5 + 8.01, 20.5, 2)), 2)
    other_case = ("r", "m", "c2", 20.0, 10.0, 5)
    assert lesion_marks.match_marks([inside], lesions, 8.0) == [("r", "m", "c1", "region", 4.0)]
    assert lesion_marks.match_marks([outside], lesions, 8.0) == [("r", "m", "c1", None, 2.0)]
    assert lesion_marks.match_marks([other_case], lesions, 8.0) == [("r", "m", "c2", None, 5.0)]


def test_two_marks_on_one_lesion_count_once_at_the_higher_rating():
    lesions = [("c1", "region", 20.0, 10.0)]
    marks = [("r", "m", "c1", 20.0, 11.0, 2), ("r", "m", "c1", 19.0, 10.0, 5), ("r2", "m", "c1", 20.0, 10.0, 1)]
    matched = sorted(lesion_marks.match_marks(marks, lesions, 8.0))
    assert matched == [("r", "m", "c1", "region", 5.0), ("r2", "m", "c1", "region", 1.0)]
    mask = np.zeros((30, 30), bool)
    mask[18:23, 8:13] = True
    overlap = sorted(lesion_marks.match_marks_overlap(marks, [("c1", "region", mask)]))
    assert overlap == matched


def test_overlap_acceptance_takes_the_pixel_a_mark_falls_in():
    mask = np.zeros((30, 30), bool)
    mask[20, 10] = True  # one pixel: corners x 10 … 11, y 20 … 21
    lesions = [("c1", "region", mask)]

    def matched(x, y):
        row, col = probe_reading.mark_position(point(x, y, 3))
        return lesion_marks.match_marks_overlap([("r", "m", "c1", row, col, 3)], lesions)[0][3]

    assert matched(10.5, 20.5) == "region"
    assert matched(10.01, 20.99) == "region"
    assert matched(9.99, 20.5) is None and matched(10.5, 21.01) is None
    # the radius rule would take a mark 5 px away; overlap does not
    assert matched(15.5, 20.5) is None


def test_under_overlap_acceptance_a_box_that_holds_a_mask_pixel_localises_the_lesion():
    mask = np.zeros((30, 30), bool)
    mask[20, 10] = True  # pixel centre at x 10.5, y 20.5
    big = {"type": "box", "slice": 0, "points": [[10.0, 20.0], [25.0, 29.0]], "rating": 4}  # centre far off
    beside = {"type": "box", "slice": 0, "points": [[10.6, 20.0], [25.0, 29.0]], "rating": 2}
    assert probe_reading.box_hit(big, mask) == (20, 10) and probe_reading.box_hit(beside, mask) is None
    record = {"item_kind": ItemKind.REGULAR, "run": 1, "case": "c1", "reader": "r", "answer": {"marks": [big, beside]}}
    marks = probe_reading.reader_marks([record], {"c1": mask})
    matched = lesion_marks.match_marks_overlap(marks, [("c1", "region", mask)])
    assert sorted(matched, key=repr) == [("r", 1, "c1", "region", 4.0), ("r", 1, "c1", None, 2.0)]
    # without masks (radius acceptance) a box is at its centre
    assert probe_reading.reader_marks([record])[0][3:5] == (24.0, 17.0)


def test_marks_in_a_probe_study_need_a_rating():
    shape = [1, 96, 96]
    assert validate("hallucination", {"marks": [point(3, 4, 5)]}, shape=shape, ratings=True)["marks"][0]["rating"] == 5
    with pytest.raises(InvalidAnswer, match="Rate every mark"):
        validate("hallucination", {"marks": [{"type": "point", "slice": 0, "points": [[3, 4]]}]}, shape=shape,
                 ratings=True)  # fmt: skip
    with pytest.raises(InvalidAnswer, match="1 to 5"):
        validate("hallucination", {"marks": [point(3, 4, 6)]}, shape=shape, ratings=True)
    # a draft may hold an unrated mark; a study without ratings takes marks without
    assert validate("hallucination", {"marks": [{"type": "point", "slice": 0, "points": [[3, 4]]}]}, shape=shape,
                    ratings=True, partial=True)  # fmt: skip
    assert validate("hallucination", {"none": True}, shape=shape, ratings=True) == {"none": True}


def _random_froc(rng, n_readers=4, n_cases=30, modalities=("a", "b")):
    cases = [f"c{i:02d}" for i in range(n_cases)]
    truths = {}
    for m in modalities:
        abnormal = sorted(rng.choice(cases, size=n_cases // 2, replace=False))
        truths[m] = [(case, "l", None) for case in abnormal]
    marks = []
    for m in modalities:
        lesion_cases = {c for c, _, _ in truths[m]}
        for r in range(n_readers):
            for case in cases:
                if case in lesion_cases and rng.random() < 0.7:
                    marks.append((f"r{r}", m, case, "l", float(rng.integers(1, 6))))
                if rng.random() < 0.4:
                    marks.append((f"r{r}", m, case, None, float(rng.integers(1, 4))))
    return marks, truths, cases


def test_or_with_a_truth_per_modality_equals_the_shared_truth_analysis_when_truths_coincide():
    rng = np.random.default_rng(5)
    marks, truths, cases = _random_froc(rng)
    shared = {m: truths["a"] for m in truths}
    lesion_cases = {c for c, _, _ in truths["a"]}
    marks = [(r, m, c, lesion if c in lesion_cases else None, v) for r, m, c, lesion, v in marks]
    for fom in froc.FOMS:
        expected = froc.significance(marks, truths["a"], cases, fom)
        got = froc.significance_by_modality(marks, shared, cases, fom)
        assert got.f_stat == pytest.approx(expected.f_stat, rel=1e-12)
        assert got.df_denom == pytest.approx(expected.df_denom, rel=1e-12)
        assert got.p_value == pytest.approx(expected.p_value, rel=1e-12)
        np.testing.assert_allclose(got.auc_table, expected.auc_table, rtol=1e-12)
        np.testing.assert_allclose(got.covariance, expected.covariance, rtol=1e-10, atol=1e-15)


def test_or_with_a_truth_per_modality_uses_each_modalitys_own_figures_of_merit():
    rng = np.random.default_rng(6)
    marks, truths, cases = _random_froc(rng)
    readers = sorted({m[0] for m in marks})
    result = froc.significance_by_modality(marks, truths, cases, "wAFROC", readers=readers)
    for i, m in enumerate(result.modalities):
        own = froc.figure_of_merit([x for x in marks if x[1] == m], truths[m], cases, readers=readers, modalities=[m])
        assert list(result.auc_table[i]) == pytest.approx([own[(m, r)] for r in readers])
        # its own block of the covariance is its own jackknife's
        jk = froc.jackknife([x for x in marks if x[1] == m], truths[m], cases, readers=readers, modalities=[m])
        values = jk.values[0]
        centred = values - values.mean(axis=1, keepdims=True)
        k = values.shape[1]
        block = result.covariance[i * len(readers) : (i + 1) * len(readers), i * len(readers) : (i + 1) * len(readers)]
        np.testing.assert_allclose(block, (k - 1) / k * centred @ centred.T, rtol=1e-10, atol=1e-15)
    with pytest.raises(ValueError, match="without a truth"):
        froc.significance_by_modality(marks, {"a": truths["a"]}, cases)


# --- A probe-mode study (database) ---------------------------------------------------------------------


@pytest.fixture
def world(db, tmp_path):
    from tests.readerstudy.probe_study_support import probe_world

    return probe_world(tmp_path)


def _start(task, mains, readers, **fields):
    fields = {"design": "hallucination", "probe_mode": True, "real_ratio": 0, "seed": 4, **fields}
    study = ReaderStudy.objects.create(title="Probe reading", task=task, **fields)
    study.runs.set(mains)
    study.readers.set(readers)
    return build.freeze(study)


def _secrets(study, mains, probes):
    words = {"probe", "probes", "inserted", "removed", "control", "invented", "omitted", "synthetic", "paste", "blur"}
    words |= {"inserted_plausible", "inserted_csf", "inserted_outside", "white_matter", "csf", "outside"}
    words |= {run.name for run in [*mains, *probes]} | {str(run.uid) for run in [*mains, *probes]}
    words |= set(study.images.values_list("case__case_id", flat=True))
    return words


def _answer(rng, shape, truth_centre):
    """A mark near the probe (in viewer coordinates) or a false one, or none."""
    draw = rng.random()
    if draw < 0.2:
        return {"none": True}
    marks = []
    if draw < 0.8:
        row, col = np.asarray(truth_centre) + rng.normal(0, 2.0, 2)
        marks.append(point(round(float(col) + 0.5, 2), round(float(row) + 0.5, 2), int(rng.integers(1, 6))))
    marks.append(point(float(rng.uniform(0, shape[1])), float(rng.uniform(0, shape[0])), int(rng.integers(1, 4))))
    return {"marks": marks}


def test_a_probe_study_reads_each_probe_case_of_each_probe_run_blinded_and_scores_it_by_wafroc(world, client):
    task, probe_set, mains, probes = world
    readers = [make_reader(f"reader{i}") for i in range(3)]
    study = _start(task, mains, readers)

    # Items: one per probe case per probe run, showing the probe run's output of that probe case.
    n_probe_cases = ProbeCase.objects.filter(probe_set=probe_set).count()
    regular = study.items.filter(kind=ItemKind.REGULAR).select_related("image")
    assert regular.count() == n_probe_cases * len(probes)
    assert {(item.image.run_id, item.image.case_id) for item in regular} == {
        (probe.pk, pc.case_id) for probe in probes for pc in ProbeCase.objects.filter(probe_set=probe_set)
    }
    assert not study.images.filter(source="real").exists()

    # Blinding: the browser learns tokens and uniform headers, never the run, the case or the probe's kind.
    client.force_login(readers[0])
    secrets = _secrets(study, mains, probes)
    page = client.get(f"/read/{study.uid}/").content.decode()
    state = client.get(f"/api/read/{study.uid}/state/").json()
    text = json.dumps(state)
    leaks = sorted(w for w in secrets if re.search(rf"(?<![A-Za-z0-9_-]){re.escape(w)}(?![A-Za-z0-9_-])", text))
    assert leaks == []
    assert '"ratings": true' in page and not [w for w in ("paste", "blur", probes[0].name) if w in page]
    fixed = ("byte_order", "channels", "columns", "rows", "dtype", "kind", "spacing", "whole_bytes", "shape")
    headers = [image.header for image in study.images.all()]
    assert len({tuple(sorted(h)) for h in headers}) == 1, "every image's header has the same fields"
    assert len({json.dumps([h.get(k) for k in fixed]) for h in headers}) == 1, "and the same geometry"
    sizes = {image.array.size for image in study.images.all()}
    assert len(sizes) == 1

    # Nor can the reader reach the probe runs, their main runs or the probe set (whose truth images show
    # where each probe is) while the study runs.
    for url in [f"/runs/{run.pk}/" for run in [*mains, *probes]] + [f"/datasets/{probe_set.dataset_id}/"]:
        assert client.get(url).status_code == 404, url

    # An unrated mark is refused over HTTP; a rated one is stored.
    token = state["item"]["token"]
    body = {"item": token, "answer": {"marks": [{"type": "point", "slice": 0, "points": [[5, 5]]}]}, "key": "k0"}
    response = client.post(f"/api/read/{study.uid}/answers/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400 and "Rate every mark" in response.content.decode()
    body["answer"]["marks"][0]["rating"] = 4
    response = client.post(f"/api/read/{study.uid}/answers/", json.dumps(body), content_type="application/json")
    assert response.status_code == 200

    # Everyone answers the rest (seeded), through the same call as the endpoint.
    centres = {pc.case.case_id: pc.truth["centre"] for pc in ProbeCase.objects.filter(probe_set=probe_set)}
    for index, reader in enumerate(readers):
        session = reading.open_session(study, reader=reader)
        while not (current := reading.state(session))["finished"]:
            token = current["item"]["token"]
            assignment = Assignment.objects.select_related("item__image__case").get(token=token)
            rng = np.random.default_rng([index, assignment.item.index])
            value = _answer(rng, [96, 96], centres[assignment.item.image.case.case_id])
            reading.submit_as(study.uid, reader=reader, token=token, value=value, key=f"k{assignment.position}")
            session.refresh_from_db()
    assert probe_reading.probe_marks(probes[0]) == [], "only closed studies' marks"
    studies.close(study)

    # The analysis against an independent recomputation from the CSV export and the probe scores.
    client.force_login(study_editor(study))
    rows = list(csv.DictReader(io.StringIO(client.get(f"/studies/{study.pk}/answers.csv").content.decode())))
    lesions = {}
    for probe in probes:
        regions = probe_detectors.hallucinated_regions(ProbeScore.objects.get(run=probe))
        lesions[probe.pk] = [(case, "region", *centres[case]) for case in sorted(regions)]
    assert all(lesions.values()) and lesions[probes[0].pk] != lesions[probes[1].pk]
    marks = []
    for row in rows:
        if row["item_kind"] != "regular":
            continue
        for mark in json.loads(row["answer"]).get("marks", []):
            x, y = mark["points"][0]
            marks.append((row["reader"], int(row["run"]), row["case"], y - 0.5, x - 0.5, mark["rating"]))
    matched = [m for probe in probes for m in lesion_marks.match_marks(
        [x for x in marks if x[1] == probe.pk], lesions[probe.pk], study.acceptance_radius_px)]  # fmt: skip
    names = sorted(r.username for r in readers)
    cases = sorted(centres)
    result = analysis.analyse(study)
    probe_result = result["probe"]
    assert probe_result["readers"] == names and probe_result["cases"] == len(cases)
    truths = {}
    for probe in probes:
        truth = [(case, "region", None) for case, *_ in lesions[probe.pk]]
        truths[probe.pk] = truth
        expected = froc.figure_of_merit([m for m in matched if m[1] == probe.pk], truth, cases, "wAFROC",
                                        readers=names, modalities=[probe.pk])  # fmt: skip
        got = probe_result["runs"][probe.pk]["reader_fom"]
        assert got == pytest.approx({r: expected[(probe.pk, r)] for r in names}, abs=1e-12)
        assert probe_result["runs"][probe.pk]["lesions"] == len(truth)
    expected = froc.significance_by_modality(matched, truths, cases, "wAFROC", readers=names)
    assert probe_result["significance"].f_stat == pytest.approx(expected.f_stat)
    assert probe_result["significance"].p_value == pytest.approx(expected.p_value)

    detail = client.get(f"/studies/{study.pk}/").content.decode()
    assert 'id="probe-settings"' in detail and "within 8 px of its centre" in detail
    # The page: tables and the FROC plot's host; the JSON is valid; a public copy names no reader.
    page = client.get(f"/studies/{study.pk}/analysis/").content.decode()
    assert 'id="plot-froc"' in page and 'id="probe-wafroc"' in page and 'id="probe-single"' in page
    data = client.get(f"/api/studies/{study.pk}/analysis/").json()
    assert set(data["probe"]["runs"]) == {str(p.pk) for p in probes}
    froc_points = data["probe"]["runs"][str(probes[0].pk)]["froc"]
    assert [p["threshold"] for p in froc_points] == [5, 4, 3, 2, 1]
    pairs = zip(froc_points, froc_points[1:], strict=False)
    assert all(a["llf"] <= b["llf"] and a["nlf"] <= b["nlf"] for a, b in pairs)
    public = json.dumps(analysis.as_json(analysis.for_public(result)))
    assert not [name for name in names if name in public]

    # Reader marks per probe run, from the closed study (index coordinates: the viewer's value − ½).
    exported = probe_reading.probe_marks(probes[0])
    ours = sorted((c, col, row, r, reader) for reader, run, c, row, col, r in marks if run == probes[0].pk)
    assert sorted(exported) == ours
    assert all(math.isfinite(x) and math.isfinite(y) for _, x, y, _, _ in exported)


def study_editor(study):
    from django.contrib.auth import get_user_model

    editor = get_user_model().objects.create_user("editor1", password="x", is_staff=True)
    return editor


def test_overlap_acceptance_and_probe_mode_refusals(world):
    task, probe_set, mains, probes = world
    reader = make_reader()
    study = _start(task, mains, [reader], acceptance="overlap")
    truth = probe_reading.study_truth(study)
    run = probes[0].pk
    case, _, row, col = truth["runs"][run]["lesions"][0]
    mask = truth["masks"][case]
    assert mask[round(row), round(col)]
    inside = [(reader.username, run, case, row, col, 3)]
    far = [(reader.username, run, case, row + 40, col, 3)]
    assert probe_reading.match(study, inside, truth)[0][3] == "region"
    assert probe_reading.match(study, far, truth)[0][3] is None
    # probe mode needs the hallucination design, and main runs with a scored probe run
    with pytest.raises(Exception, match="hallucination"):
        _start(task, mains, [], design="turing")
    ProbeScore.objects.filter(run=probes[1]).delete()
    with pytest.raises(Exception, match="not scored"):
        _start(task, mains, [])


def test_a_probe_study_is_made_only_by_someone_who_sees_the_probe_set(world, django_user_model):
    """A study editor who does not organise the task would get the probe set's outputs and truth into a study
    of their own: the freeze refuses, naming why; the task's organiser may."""
    task, _, mains, _ = world
    editor = django_user_model.objects.create_user("outsider")
    with pytest.raises(StudyError, match="only its organisers see, and the study.s editor outsider"):
        _start(task, mains, [make_reader()], created_by=editor)
    organiser = django_user_model.objects.create_user("organiser-of-task")
    participation.add_organiser(task, user=organiser)
    # An editor named beside the organiser sees the study as much as its creator does.
    study = ReaderStudy.objects.create(
        title="Probe reading", task=task, design="hallucination", probe_mode=True, real_ratio=0, seed=4,
        created_by=organiser,
    )  # fmt: skip
    study.runs.set(mains)
    study.editors.add(editor)
    with pytest.raises(StudyError, match="editor outsider"):
        build.freeze(study)
    study.editors.remove(editor)
    study.readers.set([make_reader("r2")])
    assert build.freeze(study).is_frozen


@pytest.mark.django_db
def test_the_study_form_keeps_probe_mode_for_hallucination_marking_only():
    from django.contrib.auth import get_user_model

    from readerstudy.forms import StudyForm
    from tests.support.study_data import form_data, make_study_task

    staff = get_user_model().objects.create_user("staff1", password="x", is_staff=True)
    task, runs = make_study_task(n_cases=4, n_runs=1)
    data = form_data(task, runs, design="hallucination", probe_mode="on", acceptance="overlap",
                     acceptance_radius_px="5")  # fmt: skip
    form = StudyForm(data, user=staff)
    assert form.is_valid(), form.errors
    study = form.save(commit=False)
    assert (study.probe_mode, study.acceptance, study.acceptance_radius_px) == (True, "overlap", 5.0)
    form = StudyForm(form_data(task, runs, design="turing", probe_mode="on"), user=staff)
    assert form.is_valid(), form.errors
    study = form.save(commit=False)
    assert (study.probe_mode, study.acceptance, study.acceptance_radius_px) == (False, "radius", 8.0)


@pytest.mark.django_db
def test_sd_at_reader_marks_is_the_auc_of_the_sd_maps_at_marked_against_unmarked_grid_positions(tmp_path, monkeypatch):
    from sklearn.metrics import roc_auc_score

    from evaluation.probes import services as probe_services
    from inference.models import CaseOutput
    from readerstudy import probe_reading
    from tests.evaluation.probe_support import phantom_task
    from tests.evaluation.test_probe_sets import built_probe_set, probe_run_of, valid_model
    from tests.support.factories import NoisyScale

    task = phantom_task(n_cases=2)
    probe_set = built_probe_set(task, kinds=["inserted_plausible", "control"])
    model = valid_model(task, NoisyScale(), tmp_path, "noisy", stochastic=True, samples_per_case=3)
    _, probe_run = probe_run_of(model, probe_set)
    probe_services.score_probe_run(probe_run, n_resamples=50)
    assert probe_reading.sd_mark_agreement(probe_run) is None  # no closed study has marked it

    cases = sorted(probe_set.probe_cases.values_list("case__case_id", flat=True))
    marks = [(cases[0], 10.0, 12.0, 3, "r1"), (cases[0], 40.0, 41.0, 5, "r2"), (cases[1], 95.5, 95.5, 2, "r1")]
    monkeypatch.setattr(probe_reading, "probe_marks", lambda run: marks)
    got = probe_reading.sd_mark_agreement(probe_run)

    # Independently: the SD over samples (population SD), read at the rounded marked pixels (the edge mark clipped)
    # and at the 4-px grid points more than 8 px from every mark on their image.
    sd = {}
    for case in cases:
        stack = np.stack([o.load()[0] for o in CaseOutput.objects.filter(run=probe_run, case__case_id=case)])
        sd[case] = stack.astype(np.float64).std(axis=0)
    size = sd[cases[0]].shape[0]
    positive = [sd[c][min(int(round(y)), size - 1), min(int(round(x)), size - 1)] for c, x, y, _r, _u in marks]
    negative = []
    for case in cases:
        own = [(y, x) for c, x, y, _r, _u in marks if c == case]
        for row in range(0, size, 4):
            for col in range(0, size, 4):
                if all((row - y) ** 2 + (col - x) ** 2 > 64 for y, x in own):
                    negative.append(sd[case][row, col])
    labels = [1] * len(positive) + [0] * len(negative)
    expected = roc_auc_score(labels, positive + negative)
    assert got["marks"] == 3 and got["unmarked"] == len(negative) and got["readers"] == 2
    assert got["auc"] == pytest.approx(expected, abs=1e-9)

    # On the main run's page and the probe page, from the closed studies whose analysis the viewer may read: an
    # unpublished study's marks reach its editors only (a study with these marks, answers as `answer_records` has them).
    from django.contrib.auth import get_user_model
    from django.template.defaultfilters import floatformat
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from readerstudy import selectors
    from readerstudy.models import StudyImage, StudyItem, StudyStatus

    editor = get_user_model().objects.create_user("probe-editor")
    study = ReaderStudy.objects.create(
        title="Marks", task=task, design="hallucination", probe_mode=True, status=StudyStatus.CLOSED,
        closed_at=timezone.now(), created_by=editor,
    )  # fmt: skip
    image = StudyImage.objects.create(
        study=study, source="synthetic", run=probe_run, case=probe_run.outputs.first().case, array="x.npy", header={}
    )
    StudyItem.objects.create(study=study, index=0, kind=ItemKind.REGULAR, image=image)
    records = [
        {"item_kind": ItemKind.REGULAR, "run": probe_run.pk, "case": case, "reader": reader,
         "answer": {"marks": [point(x + 0.5, y + 0.5, rating)]}}
        for case, x, y, rating, reader in marks
    ]  # fmt: skip
    monkeypatch.setattr(selectors, "answer_records", lambda s: records if s.pk == study.pk else [])
    shown = f'<strong id="reader-sd-auc">{floatformat(expected, 3)}</strong>'
    main_url = probe_run.probe_of.get_absolute_url()
    assert 'id="probe-reader-sd"' not in Client().get(main_url).content.decode()  # unpublished: not the public's
    as_editor = Client()
    as_editor.force_login(editor)
    page = as_editor.get(main_url).content.decode()
    assert shown in page and page.index('id="probes"') < page.index('id="probe-reader-sd"')
    ReaderStudy.objects.filter(pk=study.pk).update(published_at=timezone.now())
    assert shown in Client().get(main_url).content.decode()
    probe_page = Client().get(reverse("task-probes", args=[task.slug])).content.decode()
    assert f"{floatformat(expected, 3)}</span></td></tr>" in probe_page
