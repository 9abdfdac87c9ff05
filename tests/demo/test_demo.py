"""The demo benchmark end to end: seeded through the real services, run by a real worker,
shown on every page."""

import io
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from core.models import JobStatus
from demo import shipped
from evaluation.models import CaseResult, Evaluation, MetricResult
from inference.models import CaseImage, CaseOutput, GenerativeModel, ModelStatus, Run, Task

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_seeded_demo_runs_to_success_and_every_page_renders(celery_worker, client):
    call_command("seed_demo", fast=True, cases=4, volumes=1)
    assert set(Task.objects.values_list("slug", flat=True)) == {"t1-to-t2", "recon-4x"}
    deadline = time.monotonic() + 240
    while Run.objects.exclude(status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED]).exists():
        assert time.monotonic() < deadline, celery_worker.read_log()[-3000:]
        time.sleep(0.5)
    failed = list(Run.objects.filter(status=JobStatus.FAILED).values_list("name", "error"))
    assert not failed, failed
    # The twelve shipped models, each loaded through the upload path and pinned by its manifest's sha256; each
    # diffusion model as a 3-setting DDIM sweep: 10 + 2 × 3 runs.
    manifest = shipped.load_manifest()["models"]
    assert Run.objects.filter(probe_of__isnull=True).count() == 16
    assert set(GenerativeModel.objects.values_list("status", flat=True)) == {ModelStatus.VALID}
    assert sorted(GenerativeModel.objects.values_list("sha256", flat=True)) == sorted(
        entry["sha256"] for entry in manifest.values()
    )
    assert dict(GenerativeModel.objects.values_list("name", "family")) == {
        entry["name"]: entry["family"] for entry in manifest.values()
    }
    for model in GenerativeModel.objects.filter(family="diffusion"):
        sweep = model.runs.order_by("sampling_steps")
        assert [run.sampling_steps for run in sweep] == [2, 5, 10] and len({run.sweep for run in sweep}) == 1
    stochastic = Run.objects.get(model__name="Stochastic U-Net (4 samples)")
    assert CaseOutput.objects.filter(run=stochastic).count() == 4 * 4
    diffusion = Run.objects.get(model__family="diffusion", model__task__slug="t1-to-t2", sampling_steps=10)
    assert CaseOutput.objects.filter(run=diffusion).count() == 4 * 2

    # The reconstruction inputs are two-channel k-space; the volumes came in as NIfTI.
    assert CaseImage.objects.filter(case__dataset__tasks__slug="recon-4x", role="input").first().shape == [2, 128, 128]
    volume = CaseImage.objects.get(case__dataset__name__contains="volumes", role="input")
    assert volume.shape == [1, 32, 96, 96] and volume.spacing == [2.0, 1.0, 1.0] and volume.source_format == "nifti"

    # Every succeeded run is evaluated on the metrics queue: pixel and radiomics tiers with CIs.
    while Evaluation.objects.exclude(status__in=Evaluation.FINAL).exists() or Evaluation.objects.count() < 16:
        assert time.monotonic() < deadline, celery_worker.read_log()[-3000:]
        time.sleep(0.5)
    failed = list(Evaluation.objects.filter(status=JobStatus.FAILED).values_list("run__name", "error"))
    assert not failed, failed
    for run in Run.objects.all():
        metrics = set(MetricResult.objects.filter(run=run).values_list("metric", flat=True))
        assert {"psnr", "ssim", "frd"} <= metrics, (run.name, metrics)
        assert MetricResult.objects.filter(run=run, metric="ssim", ci_low__isnull=False).exists()
    assert CaseResult.objects.filter(run=stochastic, uncertainty_mean__gt=0).count() == 4
    assert CaseResult.objects.filter(run=diffusion, uncertainty_mean__gt=0).count() == 4

    task = Task.objects.get(slug="t1-to-t2")
    run = Run.objects.filter(task=task).first()
    case = task.dataset.cases.first()
    output = CaseOutput.objects.filter(run=run).first()
    # The translation task's test set is hidden: the public sees its inputs, not its references nor
    # the outputs of its runs; the demo's admin (a superuser) sees every page whole.
    assert "hidden-references" in client.get(f"/cases/{case.pk}/").content.decode()
    assert client.get(f"/cases/{case.pk}/input/0.png").status_code == 200
    assert client.get(f"/cases/{case.pk}/reference/0.png").status_code == 404
    assert client.get(f"/runs/{run.pk}/outputs/{output.pk}.png").status_code == 404
    client.force_login(get_user_model().objects.get(username="admin"))
    pages = {
        "/": task.name,
        f"/tasks/{task.slug}/": "U-Net",
        f"/datasets/{task.dataset_id}/": case.case_id,
        f"/cases/{case.pk}/": "reference",
        "/models/": "Intensity remap",
        f"/models/{run.model_id}/": run.model.sha256,
        f"/runs/{run.pk}/": "Feature tier",
    }
    for url, text in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert text in response.content.decode(), url
    assert "hidden-references" not in client.get(f"/cases/{case.pk}/").content.decode()
    for url in (
        f"/cases/{case.pk}/input/0.png",
        f"/cases/{case.pk}/reference/0.png",
        f"/runs/{run.pk}/outputs/{output.pk}.png",
    ):
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert response.content.startswith(b"\x89PNG")
    client.logout()

    # Both demo leaderboards: every run with both tiers, the test against the leader, rank stability.
    for slug, runs in (("t1-to-t2", 10), ("recon-4x", 6)):
        board = client.get(f"/api/tasks/{slug}/leaderboard/?format=json").json()
        assert len(board["rows"]) == runs, slug
        assert [row["rank"] for row in board["rows"]] == sorted(row["rank"] for row in board["rows"])
        for row in board["rows"]:
            assert row["values"]["psnr"]["ci_low"] is not None and row["values"]["frd:radiomics"]["value"] is not None
            assert row["rank_stability"]["rank_frequencies"], row["run"]
            assert (row["versus_leader"] is None) == (row["rank"] == 1 and row is board["rows"][0])
        page = client.get(f"/tasks/{slug}/leaderboard/").content.decode()
        assert "Feature realism" in page and 'id="plot-stability"' in page
    assert "no study yet" in client.get("/tasks/recon-4x/leaderboard/").content.decode()

    # The clinical tier's downstream task: every translation run and the real→real reference trained (seconds
    # with --fast), each run with Dice, HD95 and the utility ratio with CIs.
    from evaluation import downstream
    from evaluation.models import DownstreamJob

    translation_runs = Run.objects.filter(task__slug="t1-to-t2")
    while (
        DownstreamJob.objects.count() < translation_runs.count() + 1
        or DownstreamJob.objects.exclude(status__in=DownstreamJob.FINAL).exists()
    ):
        assert time.monotonic() < deadline, celery_worker.read_log()[-3000:]
        time.sleep(0.5)
    failed = list(DownstreamJob.objects.exclude(status=JobStatus.SUCCEEDED).values_list("run__name", "error"))
    assert not failed, failed
    for run in translation_runs:
        clinical = MetricResult.objects.filter(run=run, tier="clinical", ci_low__isnull=False)
        downstream_metrics = set(clinical.exclude(metric__startswith="reader_").values_list("metric", flat=True))
        assert downstream_metrics == {"downstream_dice", "downstream_hd95", "utility_ratio"}
    assert downstream.task_reference(task)["dice_ci"] is not None
    client.force_login(get_user_model().objects.get(username="admin"))  # the run of a hidden test set
    assert "Downstream task" in client.get(f"/runs/{run.pk}/").content.decode()
    client.logout()

    # The demo reader studies: built once the translation runs were evaluated; one answered by four simulated
    # readers, closed and published to the translation leaderboard; the fresh demo reader has an open one.
    from demo.study import DEMO_READER_TITLE, DEMO_RUNS, DEMO_TITLE
    from readerstudy.models import ReaderStudy, StudyStatus

    while not ReaderStudy.objects.filter(title=DEMO_READER_TITLE).exists():
        assert time.monotonic() < deadline, celery_worker.read_log()[-3000:]
        time.sleep(0.5)
    study = ReaderStudy.objects.get(title=DEMO_TITLE)
    assert study.status == StudyStatus.CLOSED and study.published_at is not None
    assert study.sessions.filter(finished_at__isnull=False).count() == 4
    assert not study.readers.filter(username="reader").exists()
    own = ReaderStudy.objects.get(title=DEMO_READER_TITLE)
    assert own.status == StudyStatus.RUNNING and own.published_at is None
    assert list(own.readers.values_list("username", flat=True)) == ["reader"]
    board = client.get("/api/tasks/t1-to-t2/leaderboard/?format=json").json()
    key = f"reader_auc:study-{study.pk}"
    studied = [row for row in board["rows"] if row["values"][key].get("value") is not None]
    assert {row["run"]["name"] for row in studied} == set(DEMO_RUNS)
    assert "Reader AUC" in client.get("/tasks/t1-to-t2/leaderboard/").content.decode()
    client.login(username="reader", password="reader")
    assert client.get("/studies/").status_code == 200
    assert client.get(f"/api/read/{own.uid}/state/").json()["done"] == 0
    assert client.get("/tasks/t1-to-t2/leaderboard/").status_code == 404  # blinded until the study is published
    # Nothing with the study's pixels reaches the reader: not the case pages' references, not any output.
    hashes = set(own.images.values_list("source_sha256", flat=True))
    assert CaseImage.objects.filter(content_sha256__in=hashes).exists()
    assert CaseOutput.objects.filter(content_sha256__in=hashes).exists()
    for image in CaseImage.objects.filter(content_sha256__in=hashes):
        assert client.get(f"/api/arrays/case-images/{image.pk}/data/").status_code == 404
    for output in CaseOutput.objects.filter(content_sha256__in=hashes):
        assert client.get(f"/api/arrays/outputs/{output.pk}/data/").status_code == 404
    client.logout()

    # The README's tables: every run of both boards, each tier filled, the values the board's API serves.
    out, err = io.StringIO(), io.StringIO()
    call_command("demo_tables", stdout=out, stderr=err)
    assert err.getvalue() == "", err.getvalue()
    rows = [line for line in out.getvalue().splitlines() if line.startswith("| ") and " | " in line]
    lines = {line.split(" | ")[1]: line for line in rows}
    for slug in ("t1-to-t2", "recon-4x"):
        board = client.get(f"/api/tasks/{slug}/leaderboard/?format=json").json()
        for row in board["rows"]:
            cells = lines[row["run"]["name"]].strip("| ").split(" | ")
            ssim = float(cells[4 if slug == "t1-to-t2" else 5].split(" ")[0])
            assert ssim == pytest.approx(row["values"]["ssim"]["value"], abs=5e-4), row["run"]["name"]

    # The hallucination probes: once the tiers are filled, a probe set of the translation task and a scored probe
    # run of each probed baseline, off the leaderboard.
    from demo.probe_demo import PROBED_RUNS
    from evaluation.models import ProbeScore, ProbeSet

    while ProbeScore.objects.count() < len(PROBED_RUNS):
        assert time.monotonic() < deadline + 120, celery_worker.read_log()[-3000:]
        assert not Run.objects.filter(probe_of__isnull=False, status=JobStatus.FAILED).exists()
        time.sleep(0.5)
    probe_set = ProbeSet.objects.get()
    assert probe_set.status == JobStatus.SUCCEEDED and probe_set.probe_cases.exists()
    scored = ProbeScore.objects.select_related("run__probe_of")
    assert {score.run.probe_of.name for score in scored} == set(PROBED_RUNS)
    for score in scored:
        assert score.run.dataset_id == probe_set.dataset_id and 0 <= score.index["index"]["estimate"] <= 1
    assert len(client.get("/api/tasks/t1-to-t2/leaderboard/?format=json").json()["rows"]) == 10
    # ... read by the four simulated radiologists in a closed probe-mode marking study; the board shows the index
    # with its CI and links the probe page, which shows the readers' agreement with the SD maps.
    from demo.probe_demo import PROBE_STUDY_TITLE

    while not ReaderStudy.objects.filter(title=PROBE_STUDY_TITLE, status=StudyStatus.CLOSED).exists():
        assert time.monotonic() < deadline + 180, celery_worker.read_log()[-3000:]
        time.sleep(0.5)
    probe_study = ReaderStudy.objects.get(title=PROBE_STUDY_TITLE)
    assert probe_study.probe_mode and probe_study.status == StudyStatus.CLOSED
    assert probe_study.sessions.filter(finished_at__isnull=False).count() == 4
    client.force_login(get_user_model().objects.get(username="admin"))
    board_page = client.get("/tasks/t1-to-t2/leaderboard/").content.decode()
    assert "Hallucination index" in board_page and "/tasks/t1-to-t2/probes/" in board_page
    probe_page = client.get("/tasks/t1-to-t2/probes/").content.decode()
    assert "reader-sd-auc" in probe_page and f"/studies/{probe_study.pk}/analysis/" in probe_page
    analysis = client.get(f"/studies/{probe_study.pk}/analysis/").content.decode()
    assert 'id="plot-froc"' in analysis
    client.logout()
    # The study is closed, not published: the public sees the index, not the study.
    assert f"/studies/{probe_study.pk}/analysis/" not in client.get("/tasks/t1-to-t2/probes/").content.decode()

    call_command("seed_demo", if_empty=True)  # a second seeding changes nothing
    assert Run.objects.filter(probe_of__isnull=True).count() == 16
