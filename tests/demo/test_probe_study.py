"""The demo's probe-mode study: simulated readers who mark what is visible, through the readers' submit path."""

import pytest

from demo.probe_study import seed_probe_study
from readerstudy import analysis
from readerstudy.models import Answer, ItemKind, StudyStatus
from tests.readerstudy.probe_study_support import probe_world
from tests.support.study_data import make_reader

pytestmark = pytest.mark.django_db


def _answers_by_item(study):
    return {
        (a.session.reader.username[-1], a.assignment.item.index): a.value
        for a in Answer.objects.filter(session__study=study).select_related("session__reader", "assignment__item")
    }


def test_seed_probe_study_reads_closes_and_repeats_for_a_seed(tmp_path):
    task, _probe_set, mains, probes = probe_world(tmp_path)
    study = seed_probe_study(task, mains, [make_reader(f"a{i}") for i in range(3)], seed=9)
    assert study.status == StudyStatus.CLOSED and study.probe_mode
    n_items = study.items.count()
    assert all(s.answered == n_items and s.is_finished for s in study.sessions.all())
    values = _answers_by_item(study)
    marks = [m for value in values.values() for m in value.get("marks", [])]
    assert marks and all(1 <= m["rating"] <= 5 for m in marks)
    result = analysis.analyse(study)["probe"]
    assert set(result["runs"]) == {p.pk for p in probes}
    for row in result["runs"].values():
        assert row["mean_fom"] is not None and 0 <= row["mean_fom"] <= 1
    # visible structures get marked: more lesion localisations than chance would place in an 8-px disc
    assert sum(row["ll"] for row in result["runs"].values()) > 0
    # the same seed answers the same way, item by item (other readers: a reader reads a source once)
    again = seed_probe_study(task, mains, [make_reader(f"b{i}") for i in range(3)], seed=9, title="again")
    regular = set(study.items.filter(kind=ItemKind.REGULAR).values_list("index", flat=True))
    assert {k: v for k, v in _answers_by_item(again).items() if k[1] in regular} == {
        k: v for k, v in values.items() if k[1] in regular
    }
