"""The attacks that broke blinding, each replayed: they must now find nothing.

A reader who can fetch a study's source arrays (the references or the outputs it shows, from any
task, dataset or run, logged in or out) can match every study image to its source by correlation,
so the claim tested here is about content, not about pages: nothing with a study's pixels reaches
its readers until its results are published, and no image of a study gives itself away by bytes.
"""

import hashlib

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from inference.models import Case, CaseImage, CaseOutput, ImageRole, MemberRole, Membership, MemberStatus
from inference.storage import content_hash, load_array, save_array
from readerstudy import blinding
from readerstudy.errors import StudyError
from readerstudy.models import Design, ImageSource, ReaderStudy, StudyImage, StudyStatus
from readerstudy.services import build, publishing, studies
from tests.support.factories import add_image, make_task
from tests.support.study_data import add_output_run, make_reader, make_study, make_study_task

pytestmark = pytest.mark.django_db


def _match(study_image_array, candidates):
    """The attack: blind every candidate source as the platform does and take the best correlation."""
    shown = study_image_array.ravel()
    best = -1.0
    for array in candidates:
        blinded = blinding.blind(array, np.random.default_rng(0)).ravel()
        best = max(best, float(np.corrcoef(shown, blinded)[0, 1]))
    return best


def _fetch(client, url):
    response = client.get(url)
    if response.status_code != 200:
        return None
    return np.frombuffer(response.content, dtype="<f4")


def _reachable_arrays(client, images=(), outputs=()):
    """Every array the client can download through the viewer's array endpoints, reshaped."""
    found = []
    for image in images:
        values = _fetch(client, f"/api/arrays/case-images/{image.pk}/data/")
        if values is not None:
            found.append(values.reshape(image.shape))
    for output in outputs:
        values = _fetch(client, f"/api/arrays/outputs/{output.pk}/data/")
        if values is not None:
            found.append(values.reshape(output.shape))
    return found


def _copy_dataset_into_task(task, *, is_public, hidden_references):
    """Another task whose test set holds the same references (as the demo's reconstruction task reuses
    the translation task's T2 images)."""
    other = make_task(n_cases=0, is_public=is_public, hidden_references=hidden_references)
    for case in Case.objects.filter(dataset=task.dataset):
        copy = Case.objects.create(dataset=other.dataset, case_id=case.case_id)
        add_image(copy, ImageRole.INPUT, case.image(ImageRole.INPUT).load())
        add_image(copy, ImageRole.REFERENCE, case.image(ImageRole.REFERENCE).load())
    return other


def test_a_hidden_reference_does_not_download_logged_out_nor_for_a_participant():
    task, _runs = make_study_task(n_cases=4, n_runs=1)
    participant = make_reader("participant")
    Membership.objects.create(task=task, user=participant, role=MemberRole.PARTICIPANT, status=MemberStatus.ACCEPTED)
    references = CaseImage.objects.filter(case__dataset=task.dataset, role=ImageRole.REFERENCE)
    inputs = CaseImage.objects.filter(case__dataset=task.dataset, role=ImageRole.INPUT)
    logged_in = Client()
    logged_in.force_login(participant)
    for client in (Client(), logged_in):
        assert _reachable_arrays(client, references) == []
        assert len(_reachable_arrays(client, inputs)) == 4  # the inputs are theirs to run a model on


def test_cross_task_copies_of_the_references_do_not_reach_the_reader():
    """A private task with an open test set (its participants see the references; anonymous users do not,
    so it can be studied), and another task of the reader's holding copies of them."""
    reader = make_reader()
    task, runs = make_study_task(n_cases=10, n_runs=1, is_public=False, hidden_references=False)
    other = _copy_dataset_into_task(task, is_public=False, hidden_references=False)
    Membership.objects.create(task=other, user=reader, role=MemberRole.PARTICIPANT, status=MemberStatus.ACCEPTED)
    copies = CaseImage.objects.filter(case__dataset=other.dataset, role=ImageRole.REFERENCE)
    client = Client()
    client.force_login(reader)
    assert len(_reachable_arrays(client, copies)) == 10  # before the study: the other task's references are theirs

    study = make_study(task, runs, readers=[reader], items_per_model=3)
    real = [load_array(image.array) for image in study.images.filter(source=ImageSource.REAL)]
    assert real
    reachable = _reachable_arrays(client, copies)
    shown = set(study.images.values_list("source_sha256", flat=True))
    assert len(reachable) == 10 - len(shown & set(copies.values_list("content_sha256", flat=True)))
    # What is still reachable (cases the study does not show) matches no study image.
    for image in real:
        assert _match(image, reachable) < 0.9
    # Once its results are published, the copies are the reader's again.
    ReaderStudy.objects.filter(pk=study.pk).update(status=StudyStatus.CLOSED, published_at=timezone.now())
    assert len(_reachable_arrays(client, copies)) == 10


def test_a_study_cannot_start_while_anonymous_users_can_fetch_its_references():
    task, runs = make_study_task(n_cases=8, n_runs=1, hidden_references=False)
    with pytest.raises(StudyError, match=f"the dataset '{task.dataset.name}'"):
        make_study(task, runs, items_per_model=3)
    assert not StudyImage.objects.exists()  # the failed start left nothing behind
    assert ReaderStudy.objects.get().status == StudyStatus.DRAFT


def test_a_study_cannot_start_while_a_public_run_serves_its_outputs():
    hidden, runs = make_study_task(n_cases=8, n_runs=1)
    # The same model's outputs, published through a public task with an open test set (its references
    # are copies of the hidden ones, which the hidden test set keeps from everyone; the outputs are not).
    public, _ = make_study_task(n_cases=8, n_runs=1, hidden_references=False)
    assert not _reachable_arrays(Client(), CaseImage.objects.filter(case__dataset=public.dataset, role="reference"))
    with pytest.raises(StudyError, match=f"the task '{public}'"):
        make_study(hidden, runs, items_per_model=3)


def test_logged_out_the_reader_reaches_no_source_of_the_study():
    reader = make_reader()
    task, runs = make_study_task(n_cases=10, n_runs=2)
    study = make_study(task, runs, readers=[reader], items_per_model=3)
    images = CaseImage.objects.filter(case__dataset=task.dataset)
    outputs = CaseOutput.objects.filter(run__in=runs)
    reachable = _reachable_arrays(Client(), images, outputs)
    for image in study.images.all():
        assert _match(load_array(image.array), reachable) < 0.9, image.source


def test_closing_and_reopening_leaves_the_readers_blinded():
    reader = make_reader()
    task, runs = make_study_task(n_cases=10, n_runs=1)
    study = make_study(task, runs, readers=[reader], items_per_model=3)
    client = Client()
    client.force_login(reader)
    sources = CaseImage.objects.filter(content_sha256__in=study.images.values("source_sha256"))
    outputs = CaseOutput.objects.filter(content_sha256__in=study.images.values("source_sha256"))
    urls = [f"/tasks/{task.slug}/", f"/tasks/{task.slug}/leaderboard/", f"/runs/{runs[0].pk}/"]
    for _round in range(2):
        studies.close(study)
        assert _reachable_arrays(client, sources, outputs) == []
        assert [client.get(url).status_code for url in urls] == [404, 404, 404]
        studies.reopen(study)
    assert _reachable_arrays(client, sources, outputs) == []
    # Publishing needs a closed study; after it, reopening is refused (its readers could have looked).
    with pytest.raises(publishing.PublishError, match="Close the study"):
        publishing.publish(study)
    studies.close(study)
    ReaderStudy.objects.filter(pk=study.pk).update(published_at=timezone.now(), sources_released_at=timezone.now())
    with pytest.raises(StudyError, match="would not be blind"):
        studies.reopen(study)


def test_a_reader_is_not_given_the_same_sources_in_a_second_study():
    reader = make_reader()
    task, runs = make_study_task(n_cases=12, n_runs=2)
    first = make_study(task, runs, readers=[reader], items_per_model=3)
    second = make_study(task, runs, items_per_model=3, seed=99)
    shared = set(first.images.values_list("source_sha256", flat=True)) & set(
        second.images.values_list("source_sha256", flat=True)
    )
    assert shared  # the same runs and cases: the twins the attack matched
    with pytest.raises(StudyError, match=rf"reader1 reads the study '{first}', which shows \d+ of the same"):
        studies.invite(second, readers=[reader])
    assert not second.readers.exists() and not second.sessions.exists()
    # Named before the start, the reader blocks the start instead, with the same reason.
    third = make_study(task, runs, readers=[reader], items_per_model=3, seed=7, start=False)
    with pytest.raises(StudyError, match="reads the study"):
        build.freeze(third)
    assert ReaderStudy.objects.get(pk=third.pk).status == StudyStatus.DRAFT


def test_organisers_and_run_owners_cannot_read_the_study():
    task, runs = make_study_task(n_cases=10, n_runs=1)
    organiser, owner = make_reader("organiser"), make_reader("owner")
    Membership.objects.create(task=task, user=organiser, role=MemberRole.ORGANISER, status=MemberStatus.ACCEPTED)
    runs[0].requested_by = owner
    runs[0].save()
    study = make_study(task, runs, items_per_model=3)
    with pytest.raises(StudyError, match="organiser organises the task") as refused:
        studies.invite(study, readers=[organiser, owner])
    assert f"owner owns the run(s) {runs[0]}" in str(refused.value)


@pytest.mark.parametrize("design", [Design.TURING, Design.LIKERT])
def test_no_case_is_shown_both_real_and_synthetic(design):
    task, runs = make_study_task(n_cases=16, n_runs=2)
    study = make_study(task, runs, design=design, items_per_model=4, real_ratio=1.0)
    synthetic = set(study.images.filter(source=ImageSource.SYNTHETIC).values_list("case_id", flat=True))
    real = set(study.images.filter(source=ImageSource.REAL).values_list("case_id", flat=True))
    assert synthetic and real and not synthetic & real


def test_with_too_few_cases_the_study_has_fewer_real_items_and_says_so():
    task, runs = make_study_task(n_cases=8, n_runs=2)
    study = make_study(task, runs, items_per_model=3, real_ratio=1.0, attention_checks=0, repeated_items=0)
    real = study.images.filter(source=ImageSource.REAL)
    assert real.count() == 2  # 6 cases shown as synthetic leave 2 for the real pool
    assert "Real pool: 2 showable image(s) of cases not shown as synthetic" in study.build_log


def test_paired_cases_are_allowed_when_asked_and_the_analysis_says_so(staff_client):
    task, runs = make_study_task(n_cases=6, n_runs=2)
    study = make_study(task, runs, items_per_model=3, paired_cases=True, real_ratio=1.0)
    real = set(study.images.filter(source=ImageSource.REAL).values_list("case_id", flat=True))
    synthetic = set(study.images.filter(source=ImageSource.SYNTHETIC).values_list("case_id", flat=True))
    assert real & synthetic
    assert "Paired cases (the editor's choice)" in staff_client.get(f"/studies/{study.pk}/analysis/").content.decode()


def test_no_two_items_share_bytes_repeats_included():
    task, runs = make_study_task(n_cases=14, n_runs=2)
    study = make_study(task, runs, items_per_model=3, repeated_items=4, attention_checks=1)
    repeats = study.items.filter(kind="repeat").select_related("image", "repeat_of__image")
    assert repeats.count() == 4
    digests = [hashlib.sha256(image.array.read()).hexdigest() for image in study.images.all()]
    assert len(digests) == len(set(digests))
    for item in repeats:  # the same picture, blinded afresh
        again, original = load_array(item.image.array), load_array(item.repeat_of.image.array)
        assert item.image.source_sha256 == item.repeat_of.image.source_sha256
        assert not np.array_equal(again, original) and np.corrcoef(again.ravel(), original.ravel())[0, 1] > 0.99


def _skull_stripped_task(n_cases=12, size=96):
    """BraTS-like: integer references on an exactly zero background; outputs continuous inside the brain
    and exactly zero outside (a network's ReLU'd output)."""
    task = make_task(n_cases=n_cases, shape=(1, size, size), hidden_references=True)
    yy, xx = np.mgrid[:size, :size]
    brain = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size * 0.35) ** 2
    rng = np.random.default_rng(3)
    for case in Case.objects.filter(dataset=task.dataset):
        reference = case.image(ImageRole.REFERENCE)
        tissue = 300 + 200 * np.sin(yy / rng.uniform(2, 5)) * np.cos(xx / rng.uniform(2, 5))
        array = (np.round(tissue + rng.normal(0, 30, tissue.shape)) * brain)[None].astype(np.float32)
        save_array(reference.array, "reference_0.npy", array)
        reference.content_sha256 = content_hash(array)
        reference.save()
    run = add_output_run(
        task, "Continuous", lambda ref, rng: (ref / 1000 + rng.normal(0, 0.003, ref.shape)) * (ref > 0)
    )
    return task, [run]


def _background_levels(array):
    """The attack's feature: how many distinct levels the darkest fifth of the image spreads over."""
    values = array.ravel()
    return len(np.unique(values[values <= np.quantile(values, 0.2)]))


def _auc(real, synthetic):
    """AUC of "more background levels ⇒ real" (Mann–Whitney, ties counted half)."""
    real, synthetic = np.asarray(real, float)[:, None], np.asarray(synthetic, float)[None, :]
    return float(np.mean((real > synthetic) + 0.5 * (real == synthetic)))


def test_a_zero_background_does_not_tell_real_from_synthetic():
    task, runs = _skull_stripped_task()
    study = make_study(task, runs, items_per_model=6, real_ratio=1.0, attention_checks=0, repeated_items=0)
    levels = {source: [] for source in (ImageSource.REAL, ImageSource.SYNTHETIC)}
    per_image = {source: [] for source in levels}
    for image in study.images.all():
        levels[image.source].append(_background_levels(load_array(image.array)))
        # The old blinding (each image dithered by its own step), for comparison on the same sources.
        source = (
            CaseOutput.objects.get(run=image.run, case=image.case, sample=0)
            if image.run
            else image.case.image(ImageRole.REFERENCE)
        )
        per_image[image.source].append(_background_levels(blinding.blind(source.load(), np.random.default_rng(1))))
    assert _auc(per_image[ImageSource.REAL], per_image[ImageSource.SYNTHETIC]) == 1.0  # the leak
    assert 0.2 < _auc(levels[ImageSource.REAL], levels[ImageSource.SYNTHETIC]) < 0.8  # one dither: gone
