"""A study analysed with one reader: no empty plot, no κ from one repeated pair shown as a result, and
each run's numbers (this reader's accuracy and AUC) shown anyway, checked against scipy on the export."""

import json
import re

import numpy as np
import pytest
from django.template.defaultfilters import floatformat
from scipy import stats as scipy_stats

from readerstudy import analysis
from tests.readerstudy.test_analysis import answer_all, export_rows
from tests.support.study_data import answer_for, make_reader, make_study, make_study_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_reader_study():
    reader = make_reader("solo")
    task, runs = make_study_task(n_cases=12, n_runs=2)
    study = make_study(task, runs, readers=[reader], items_per_model=4, repeated_items=1)
    rng = np.random.default_rng(3)
    answer_all(study, reader, lambda assignment: answer_for("turing", rng))
    return study, runs, reader


def rating(answer):
    return 5 + answer["confidence"] if answer["call"] == "synthetic" else 6 - answer["confidence"]


def test_one_reader_page_shows_per_run_numbers_and_no_empty_plot(one_reader_study, staff_client):
    study, runs, reader = one_reader_study
    result = analysis.analyse(study)
    assert result["mrmc"] is None and "at least two readers" in result["mrmc_note"]
    # One repeated pair: no κ, and the reason.
    assert result["repeat_kappa"] is None
    assert result["repeat_kappa_note"] == "not computed from 1 repeated pair: it needs at least 5"

    html = staff_client.get(f"/studies/{study.pk}/analysis/").content.decode()
    assert 'id="plot-auc"' not in html  # the 380 px plot box is drawn only when there is a plot
    assert "0.000 [0.000, 0.000]" not in html
    assert re.search(r'id="repeat-kappa-note">not available \(not computed from 1 repeated pair', html)

    rows = [row for row in export_rows(staff_client, study) if row["item_kind"] == "regular"]
    for run in runs:
        mine = [r for r in rows if r["run"] in ("", str(run.pk))]
        ratings = np.array([rating(json.loads(r["answer"])) for r in mine])
        synthetic = np.array([r["source"] == "synthetic" for r in mine])
        u = scipy_stats.mannwhitneyu(ratings[synthetic], ratings[~synthetic]).statistic
        expected_auc = u / (synthetic.sum() * (~synthetic).sum())
        expected_accuracy = np.mean((ratings >= 6) == synthetic)
        got = result["turing_per_run"][run.pk][reader.username]
        assert got.n == len(mine) and got.auc == pytest.approx(expected_auc, abs=1e-12)
        assert got.accuracy == pytest.approx(expected_accuracy, abs=1e-12)
        row = re.search(rf'<tr data-run="{re.escape(str(run))}" data-reader="solo">(.*?)</tr>', html, re.S).group(1)
        cells = re.findall(r'<td class="num">([^<]*)</td>', row)
        assert cells[0] == str(len(mine))
        # The page rounds half up (Django's floatformat); f"{0.5625:.3f}" would round half to even.
        assert cells[1] == floatformat(expected_accuracy, 3) and cells[-1] == floatformat(expected_auc, 3)


def test_public_analysis_aliases_the_per_run_readers(one_reader_study):
    study, runs, _reader = one_reader_study
    public = analysis.for_public(analysis.analyse(study))
    assert set(public["turing_per_run"][runs[0].pk]) == {"Reader 1"}
    assert "solo" not in json.dumps(analysis.as_json(public))
