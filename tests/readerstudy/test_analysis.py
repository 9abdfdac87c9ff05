"""A study's analysis from its answers, checked against independent computations on the exported CSV;
publishing to the leaderboard's clinical tier; who may see the analysis and the export."""

import csv
import io
import json
import re

import numpy as np
import pytest
from django.test import Client
from scipy import stats as scipy_stats

from evaluation import leaderboard
from readerstudy import analysis, selectors
from readerstudy.models import Assignment
from readerstudy.services import publishing, reading, studies
from tests.support.study_data import answer_for, make_reader, make_study, make_study_task

pytestmark = pytest.mark.django_db


def answer_all(study, reader, decide):
    """Answer every item of `reader` with `decide(assignment) → answer`, through the real submit path."""
    session = reading.open_session(study, reader=reader)
    while True:
        state = reading.state(session)
        if state["finished"]:
            return session
        assignment = Assignment.objects.select_related("item__image", "item__image_b").get(token=state["item"]["token"])
        reading.submit(session, token=assignment.token, value=decide(assignment), key=f"k{assignment.position}")
        session.refresh_from_db()


def export_rows(client, study):
    response = client.get(f"/studies/{study.pk}/answers.csv")
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.fixture
def turing_study():
    """Run A is always caught (surely synthetic); run B is called at random; real images called real."""
    readers = [make_reader(f"r{i}") for i in range(4)]
    task, runs = make_study_task(n_cases=21, n_runs=2)  # 2 × 5 shown cases, 10 real images, 1 attention check
    study = make_study(task, runs, readers=readers, items_per_model=5, repeated_items=3, attention_checks=1)
    run_a = runs[0]
    for seed, reader in enumerate(readers):
        rng = np.random.default_rng(seed)

        def decide(assignment, rng=rng):
            image = assignment.item.image
            if image.run_id == run_a.pk or image.source == "attention":
                return {"call": "synthetic", "confidence": 5}
            if image.source == "real":
                return {"call": "real", "confidence": int(rng.integers(3, 6))}
            return answer_for("turing", rng)

        answer_all(study, reader, decide)
    return study, runs, readers


def test_turing_reader_auc_and_accuracy_match_scipy_on_the_export(turing_study, staff_client):
    study, runs, readers = turing_study
    result = analysis.analyse(study)
    rows = [row for row in export_rows(staff_client, study) if row["item_kind"] == "regular"]
    assert len(rows) == 4 * 20  # 2 runs × 5 cases + 10 real images, per reader
    for reader in readers:
        mine = [row for row in rows if row["reader"] == reader.username]
        answers = [json.loads(row["answer"]) for row in mine]
        rating = np.array([5 + a["confidence"] if a["call"] == "synthetic" else 6 - a["confidence"] for a in answers])
        synthetic = np.array([row["source"] == "synthetic" for row in mine])
        u = scipy_stats.mannwhitneyu(rating[synthetic], rating[~synthetic]).statistic
        expected_auc = u / (synthetic.sum() * (~synthetic).sum())
        accuracy = np.mean((rating >= 6) == synthetic)
        got = result["readers"][reader.username]
        assert got.auc == pytest.approx(expected_auc, abs=1e-12)
        assert got.accuracy == pytest.approx(accuracy, abs=1e-12)
    # Run A is caught by every reader: AUC 1 against the real pool, and the verdict says so.
    models = result["turing_models"]
    assert set(models[runs[0].pk]["reader_auc"].values()) == {1.0}
    assert result["equivalence"][runs[0].pk].verdict == "readers detect synthetic images"
    # Single-run means equal the mean of the per-reader AUCs (the OR estimate), which are each reader's AUC
    # on that run's images against the real pool (Mann–Whitney on the export).
    for run in runs:
        entry = models[run.pk]
        assert entry["estimate"].auc == pytest.approx(np.mean(list(entry["reader_auc"].values())))
        for reader in readers:
            mine = [r for r in rows if r["reader"] == reader.username and r["run"] in ("", str(run.pk))]
            rating = [json.loads(r["answer"]) for r in mine]
            rating = np.array(
                [5 + a["confidence"] if a["call"] == "synthetic" else 6 - a["confidence"] for a in rating]
            )
            positive = np.array([r["source"] == "synthetic" for r in mine])
            u = scipy_stats.mannwhitneyu(rating[positive], rating[~positive]).statistic
            assert entry["reader_auc"][reader.username] == pytest.approx(u / (positive.sum() * (~positive).sum()))
    # Each run was shown cases of its own: no anatomy appears twice among the regular items.
    cases = [r["case"] for r in rows if r["reader"] == readers[0].username]
    assert len(cases) == len(set(cases))
    assert result["mrmc"] is None and "different cases" in result["mrmc_note"]
    # Attention checks all passed; the repeat κ has one pair per repeated item and reader.
    assert result["attention"] == {r.username: {"passed": 1, "failed": 0} for r in readers}
    assert result["repeat_kappa"].n == 4 * 3


def test_paired_cases_compare_runs_with_one_obuchowski_rockette_analysis(staff_client):
    readers = [make_reader(f"r{i}") for i in range(3)]
    task, runs = make_study_task(n_cases=10, n_runs=2)
    study = make_study(task, runs, readers=readers, items_per_model=4, paired_cases=True)
    for seed, reader in enumerate(readers):
        rng = np.random.default_rng(seed)
        answer_all(study, reader, lambda assignment, rng=rng: answer_for("turing", rng))
    rows = [row for row in export_rows(staff_client, study) if row["item_kind"] == "regular"]
    synthetic_cases = {row["case"] for row in rows if row["source"] == "synthetic"}
    assert len(synthetic_cases) == 4  # both runs on the same four cases
    result = analysis.analyse(study)
    joint = result["mrmc"]
    assert joint is not None and joint.modalities == tuple(sorted(run.pk for run in runs))
    assert joint.df_num == 1 and joint.difference is not None
    for run in runs:
        assert result["turing_models"][run.pk]["estimate"] == joint.single_modality[run.pk]
    page = staff_client.get(f"/studies/{study.pk}/analysis/").content.decode()
    assert 'id="mrmc-test"' in page and 'id="turing-differences"' in page


def test_fleiss_kappa_of_the_calls_matches_statsmodels_on_the_export(turing_study, staff_client):
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    study, runs, readers = turing_study
    rows = [row for row in export_rows(staff_client, study) if row["item_kind"] == "regular"]
    images = sorted({row["image"] for row in rows})
    calls = {(row["image"], row["reader"]): json.loads(row["answer"])["call"] == "synthetic" for row in rows}
    matrix = np.array([[int(calls[(image, r.username)]) for r in readers] for image in images])
    table, _ = aggregate_raters(matrix)
    assert analysis.analyse(study)["fleiss_kappa"] == pytest.approx(fleiss_kappa(table, method="fleiss"), abs=1e-12)


def test_pairwise_preferences_resolve_the_randomised_sides():
    """A reader who always prefers run A's image, wherever it is shown, makes A win every pair."""
    readers = [make_reader(f"r{i}") for i in range(3)]
    task, runs = make_study_task(n_cases=8, n_runs=3)
    study = make_study(task, runs, design="pairwise", readers=readers, items_per_model=4)
    run_a = runs[0]

    def prefer_a(assignment):
        item = assignment.item
        if run_a.pk not in (item.image.run_id, item.image_b.run_id):
            return {"choice": "left"}
        a_is_first = item.image.run_id == run_a.pk  # image shown left unless swapped
        a_on_left = a_is_first != assignment.swapped
        return {"choice": "left" if a_on_left else "right"}

    for reader in readers:
        answer_all(study, reader, prefer_a)
    swapped = Assignment.objects.filter(session__study=study, swapped=True).count()
    assert 0 < swapped < Assignment.objects.filter(session__study=study).count()  # sides really were randomised
    result = analysis.analyse(study)
    index = {int(run): i for i, run in enumerate(result["runs"])}
    wins = result["wins"]
    a = index[run_a.pk]
    for other in (runs[1], runs[2]):
        assert wins[a, index[other.pk]] == 3 * 4 and wins[index[other.pk], a] == 0
    strengths = result["bradley_terry"].strengths
    assert strengths[a] == max(strengths)
    published = {run: entries[0]["value"] for run, entries in result["per_run"].items()}
    assert published[run_a.pk] > 0.5 > min(published.values())


def test_publish_fills_the_clinical_tier_and_withdrawing_restores_the_placeholder(turing_study, client):
    study, runs, readers = turing_study
    task = study.task
    board = leaderboard.build(task)
    assert board.column(leaderboard.READER_STUDY_COLUMN) is not None
    studies.close(study)
    publishing.publish(study)
    board = leaderboard.build(task)
    key = f"reader_auc:study-{study.pk}"
    column = board.column(key)
    assert column is not None and column.tier == leaderboard.CLINICAL
    assert column.link == f"/studies/{study.pk}/analysis/"
    assert board.column(leaderboard.READER_STUDY_COLUMN) is None
    result = analysis.analyse(study)
    for row in board.rows:
        cell = row.cells[key]
        estimate = result["turing_models"][row.run_id]["estimate"]
        # The published CI is the logit-scale one (inside [0, 1]), not the symmetric OR interval.
        assert cell.value == pytest.approx(estimate.auc) and cell.ci_low == pytest.approx(estimate.ci_bounded[0])
        assert 0 <= cell.ci_low <= cell.value <= cell.ci_high <= 1
    page = client.get(f"/tasks/{task.slug}/leaderboard/").content.decode()
    assert f'href="/studies/{study.pk}/analysis/"' in page and "Reader AUC" in page
    exported = client.get(f"/api/tasks/{task.slug}/leaderboard/?format=json").json()
    assert {c["key"] for c in exported["columns"]} >= {key}
    publishing.unpublish(study)
    board = leaderboard.build(task)
    assert board.column(key) is None and board.column(leaderboard.READER_STUDY_COLUMN) is not None


def test_publishing_without_enough_readers_says_why():
    reader = make_reader()
    task, runs = make_study_task(n_cases=6, n_runs=1)
    study = make_study(task, runs, readers=[reader], items_per_model=2)
    answer_all(study, reader, lambda assignment: {"call": "real", "confidence": 2})
    studies.close(study)
    with pytest.raises(publishing.PublishError, match="two readers"):
        publishing.publish(study)


def test_export_has_one_row_per_answer_with_truth_and_defused_formulas(turing_study, staff_client):
    study, runs, readers = turing_study
    runs[1].name = '=HYPERLINK("x")'
    runs[1].save()
    rows = export_rows(staff_client, study)
    assert len(rows) == sum(s.total for s in study.sessions.all())
    assert {row["source"] for row in rows} == {"real", "synthetic", "attention"}
    assert {row["run_name"] for row in rows if row["source"] == "synthetic"} == {"Model A", '\'=HYPERLINK("x")'}
    assert all(int(row["duration_ms"]) >= 0 for row in rows)


def test_analysis_is_for_editors_until_published_and_never_for_the_studys_readers(turing_study):
    study, runs, readers = turing_study
    outsider = make_reader("outsider")
    visitor = Client()
    visitor.force_login(outsider)
    reader = Client()
    reader.force_login(readers[0])
    anonymous = Client()
    for client in (visitor, reader, anonymous):
        assert client.get(f"/studies/{study.pk}/analysis/").status_code == 404
        assert client.get(f"/api/studies/{study.pk}/analysis/").status_code == 404
    studies.close(study)
    assert reader.get(f"/studies/{study.pk}/analysis/").status_code == 404  # closed, not yet published
    publishing.publish(study)
    page = visitor.get(f"/studies/{study.pk}/analysis/")
    assert page.status_code == 200
    public = anonymous.get(f"/api/studies/{study.pk}/analysis/")
    assert public.status_code == 200  # a public task
    # Others see readers as "Reader 1…n": no reader's name (nor their results under it) leaves the editors.
    for text in (page.content.decode(), public.content.decode()):
        named = [r.username for r in readers if re.search(rf"(?<![A-Za-z0-9]){r.username}(?![A-Za-z0-9])", text)]
        assert named == [] and "Reader 1" in text
    assert reader.get(f"/studies/{study.pk}/analysis/").status_code == 200
    for client in (visitor, reader, anonymous):
        assert client.get(f"/studies/{study.pk}/answers.csv").status_code in (302, 404)


def test_editor_pages_show_progress_and_median_time(turing_study, staff_client):
    study, runs, readers = turing_study
    page = staff_client.get(f"/studies/{study.pk}/").content.decode()
    for reader in readers:
        assert f'data-reader="{reader.username}"' in page
    total = study.sessions.first().total
    assert f"{total} / {total}" in page
    rows = selectors.progress(study)
    assert all(row["done"] == row["total"] == total and row["median_seconds"] is not None for row in rows)
    analysis_page = staff_client.get(f"/studies/{study.pk}/analysis/").content.decode()
    assert "Fleiss" in analysis_page and 'id="turing-models"' in analysis_page


def test_hallucination_marks_are_counted_and_listed_for_editors(staff_client):
    readers = [make_reader(f"r{i}") for i in range(2)]
    task, runs = make_study_task(n_cases=6, n_runs=2)
    study = make_study(task, runs, design="hallucination", readers=readers, items_per_model=3, real_ratio=0)
    run_a = runs[0]

    def mark_a(assignment):
        if assignment.item.image.run_id == run_a.pk:
            return {"marks": [{"type": "point", "slice": 0, "points": [[5, 6]]},
                              {"type": "box", "slice": 0, "points": [[1, 1], [9, 9]]}]}  # fmt: skip
        return {"none": True}

    for reader in readers:
        answer_all(study, reader, mark_a)
    result = analysis.analyse(study)
    assert result["marks"][run_a.pk].marks_per_image == 2.0
    assert result["marks"][runs[1].pk].marks_per_image == 0.0
    assert len(result["marked_images"]) == 3 and all(len(m["marks"]) == 4 for m in result["marked_images"])
    page = staff_client.get(f"/studies/{study.pk}/analysis/").content.decode()
    assert 'id="marked-images"' in page and "box (1, 1)(9, 9)" in page
    studies.close(study)
    publishing.publish(study)
    public = Client().get(f"/studies/{study.pk}/analysis/").content.decode()
    assert 'id="marks-summary"' in public and 'id="marked-images"' not in public
