"""The run page before its evaluation starts and after a submission fails: it says "queued" rather
than empty settings and "0 / 0 steps", and a failed run shows no downstream section."""

import pytest

from core.models import JobStatus
from evaluation.models import DownstreamSetup, Evaluation
from inference.models import Run, RunKind
from tests.support.evaluation import near_reference, succeeded_run
from tests.support.factories import make_task

pytestmark = pytest.mark.django_db

QUEUED_TEXT = "Queued: the steps are counted when a metrics worker starts it."


def test_a_queued_evaluation_says_queued_not_empty_settings(staff_client):
    task = make_task(n_cases=2)
    run = succeeded_run(task, near_reference)
    Evaluation.objects.create(run=run, status=JobStatus.QUEUED)
    html = staff_client.get(f"/runs/{run.pk}/").content.decode()
    section = html[html.index('<section id="evaluation"') :]
    assert 'id="evaluation-status" data-job-field="status">queued</span>' in section
    assert QUEUED_TEXT in section
    assert "0 / 0" not in section and "(feature tier: )" not in section and "seed </dd>" not in section
    assert "its settings are recorded when the evaluation starts" in section


def test_a_started_evaluation_shows_its_steps_and_settings(staff_client):
    task = make_task(n_cases=2)
    run = succeeded_run(task, near_reference)
    config = {"bootstrap": {"n_resamples": 1000, "feature_resamples": 200, "seed": 0}}
    Evaluation.objects.create(run=run, status=JobStatus.RUNNING, progress_done=1, progress_total=4, config=config)
    html = staff_client.get(f"/runs/{run.pk}/").content.decode()
    assert ">1 / 4 steps (cases, then feature extractors)</span>" in html
    assert "B = 1000 (feature tier: 200), seed 0" in html


def test_a_failed_submission_shows_no_downstream_section(staff_client):
    task = make_task(n_cases=2)
    DownstreamSetup.objects.create(task=task, name="tiny", seeds=[0])
    failed = Run.objects.create(
        task=task, kind=RunKind.SUBMISSION, status=JobStatus.FAILED, error="case001: missing", name="bad"
    )
    html = staff_client.get(f"/runs/{failed.pk}/").content.decode()
    assert "case001: missing" in html
    assert 'id="downstream"' not in html
    ok = succeeded_run(task, near_reference)
    assert 'id="downstream"' in staff_client.get(f"/runs/{ok.pk}/").content.decode()
