"""Freezing a study: draft → running, with its cases chosen, its images blinded and stored, its items made.

The pure parts are beside the app: `blinding` (the one normalisation, attention-check images) and
`ordering` (each reader's seeded order, applied when their session opens).
"""

import numpy as np
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from core.models import JobStatus
from inference import arrays
from inference.models import Case, CaseOutput, ImageRole
from inference.storage import array_bytes

from .. import blinding
from ..errors import StudyError
from ..models import Design, ImageSource, ItemKind, ReaderStudy, RealPool, StudyImage, StudyItem, StudyStatus
from .reading import open_session


def check_ready(study: ReaderStudy) -> None:
    """Raise StudyError unless a draft study's settings can be frozen."""
    runs = list(study.runs.all())
    if not runs:
        raise StudyError("Pick at least one run.")
    if study.design == Design.PAIRWISE and len(runs) < 2:
        raise StudyError("A pairwise study needs at least two runs.")
    wrong = [run for run in runs if run.task_id != study.task_id or run.status != JobStatus.SUCCEEDED]
    if wrong:
        raise StudyError(f"Only succeeded runs of the study's task can be read: {', '.join(map(str, wrong))}.")
    try:
        study.full_clean()
    except ValidationError as exc:
        raise StudyError("; ".join(exc.messages)) from None


def freeze(study: ReaderStudy) -> ReaderStudy:
    """Draft → running: build the blinded images and the item list, open sessions for invited readers.

    Everything happens in one transaction: a failure leaves the draft as it was (the
    stored image files of a failed build are removed).
    """
    try:
        with transaction.atomic():
            study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
            if study.status != StudyStatus.DRAFT:
                raise StudyError("The study has already started: its items are frozen.")
            check_ready(study)
            editing = [user.username for user in study.readers.all() if study.is_editor(user)]
            if editing:
                raise StudyError(f"Editors of the study cannot read it: {', '.join(editing)}.")
            builder = _Builder(study)
            _build_items(study, builder)
            study.build_log = "\n".join(builder.log)
            study.transition(StudyStatus.RUNNING)
            for reader in study.readers.all():
                open_session(study, reader=reader)
    except blinding.NotShowable as exc:
        _remove_orphan_files(study)
        raise StudyError(f"An image could not be prepared: {exc}") from None
    except Exception:
        _remove_orphan_files(study)
        raise
    return study


class _Builder:
    """Loads, blinds and stores the study's images; one instance per freeze."""

    def __init__(self, study):
        self.study = study
        self.rng = np.random.default_rng(study.seed)
        self.dither = np.random.default_rng([study.seed, 3])
        self.log = []
        # One display spacing for every image: a spacing only some real images have would give them away.
        self.spacing = None

    def blind(self, canonical):
        return blinding.blind(canonical, self.dither)

    def store(self, blinded, case, source, run=None):
        header = arrays.header(blinded, self.spacing)
        image = StudyImage(study=self.study, source=source, run=run, case=case, header=header)
        image.array.save("image.npy", ContentFile(array_bytes(blinded)), save=False)
        image.save()
        return image


def _usable_cases(study, builder, runs, count):
    """Pick `count` cases (seeded) where every run has a showable output of the reference's shape.

    Returns [(case, reference image, {run pk: blinded output})]."""
    cases = list(Case.objects.filter(dataset=study.task.dataset, images__role=ImageRole.REFERENCE).order_by("pk"))
    order = builder.rng.permutation(len(cases))
    outputs = {(o.run_id, o.case_id): o for o in CaseOutput.objects.filter(run__in=runs, sample=0, case__in=cases)}
    chosen, skipped = [], []
    for index in order:
        if len(chosen) == count:
            break
        case = cases[index]
        reference = case.image(ImageRole.REFERENCE)
        blinded = {}
        for run in runs:
            output = outputs.get((run.pk, case.pk))
            if output is None:
                skipped.append(f"{case.case_id}: no output from {run}")
                break
            if list(output.shape[1:]) != list(reference.shape[1:]):
                skipped.append(f"{case.case_id}: {run}'s output has another shape than the reference")
                break
            try:
                blinded[run.pk] = builder.blind(output.load())
            except (blinding.NotShowable, ValueError) as exc:
                skipped.append(f"{case.case_id}: {run}'s output is not showable ({exc})")
                break
        else:
            chosen.append((case, reference, blinded))
    if len(chosen) < count:
        raise StudyError(
            f"Only {len(chosen)} case(s) have a showable output from every run; {count} are needed "
            f"({study.items_per_model} per run" + ("" if count == study.items_per_model else ", each run its own")
            + "). " + "; ".join(skipped[:5])
        )  # fmt: skip
    builder.log.append(f"Cases: {', '.join(c.case_id for c, _, _ in chosen)} (seed {study.seed}).")
    if skipped:
        builder.log.append(f"Left out: {'; '.join(skipped)}.")
    return chosen


def _real_candidates(study, shown_cases, prefer_other):
    """Reference images for the real pool, in a seeded order (cases already shown last or first)."""
    if study.real_pool == RealPool.REFERENCE:
        if study.task.reference_dataset_id is None:
            raise StudyError("The task has no reference dataset; pick its test dataset's references instead.")
        dataset = study.task.reference_dataset
    else:
        dataset = study.task.dataset
    cases = list(Case.objects.filter(dataset=dataset, images__role=ImageRole.REFERENCE).order_by("pk"))
    shown = {case.pk for case in shown_cases}
    other = [case for case in cases if case.pk not in shown]
    same = [case for case in cases if case.pk in shown]
    rng = np.random.default_rng([study.seed, 2])
    other = [other[i] for i in rng.permutation(len(other))]
    same = [same[i] for i in rng.permutation(len(same))]
    return other + same if prefer_other else same + other


def _showable_references(study, builder, shown_cases, prefer_other, shapes):
    """(case, blinded reference) from the real pool, lazily: only references of the outputs' size."""
    for case in _real_candidates(study, shown_cases, prefer_other):
        reference = case.image(ImageRole.REFERENCE)
        if tuple(reference.shape[1:]) not in shapes:
            continue  # another size would tell a real image from a synthetic one
        try:
            yield case, builder.blind(reference.load())
        except blinding.NotShowable:
            continue


def _real_images(study, builder, count, shown_cases, prefer_other, shapes):
    images = []
    for case, blinded in _showable_references(study, builder, shown_cases, prefer_other, shapes):
        if len(images) == count:
            break
        images.append(builder.store(blinded, case, ImageSource.REAL))
    if len(images) < count:
        builder.log.append(f"Real pool: {len(images)} showable image(s) of the outputs' size, {count} asked for.")
    return images


def _remove_orphan_files(study):
    """Delete image files of this study that no row refers to (after a rolled-back build)."""
    folder = f"readerstudies/{study.uid}"
    try:
        _dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError, OSError):
        return
    kept = set(StudyImage.objects.filter(study=study).values_list("array", flat=True))
    for name in files:
        path = f"{folder}/{name}"
        if path not in kept:
            default_storage.delete(path)


def _build_items(study, builder):
    runs = list(study.runs.order_by("pk"))
    n = study.items_per_model
    # A Turing test shows each run cases of its own unless the editor asks for paired cases: a reader who
    # met the same anatomy once per run would know that all but (at most) one of them are synthetic.
    own_cases = study.design == Design.TURING and not study.paired_cases and len(runs) > 1
    chosen = _usable_cases(study, builder, runs, n * len(runs) if own_cases else n)
    builder.spacing = chosen[0][1].spacing
    shapes = {tuple(reference.shape[1:]) for _, reference, _ in chosen}
    per_run = {run.pk: [] for run in runs}
    for position, (case, _reference, blinded) in enumerate(chosen):
        for index, run in enumerate(runs):
            if not own_cases or position // n == index:
                per_run[run.pk].append(builder.store(blinded[run.pk], case, ImageSource.SYNTHETIC, run))
    items = []  # (image, image_b, kind, expected)
    if study.design == Design.PAIRWISE:
        for position in range(n):
            for i, run_a in enumerate(runs):
                for run_b in runs[i + 1 :]:
                    items.append((per_run[run_a.pk][position], per_run[run_b.pk][position], ItemKind.REGULAR, {}))
    else:
        for run in runs:
            items += [(image, None, ItemKind.REGULAR, {}) for image in per_run[run.pk]]
        if study.design == Design.TURING:
            n_real, prefer_other = round(study.real_ratio * len(items)), True
        else:  # a control group of real images, preferably of the same cases
            n_real, prefer_other = round(study.real_ratio * n), False
        shown = [case for case, _, _ in chosen]
        reals = _real_images(study, builder, n_real, shown, prefer_other, shapes) if n_real else []
        items += [(image, None, ItemKind.REGULAR, {}) for image in reals]
        builder.log.append(f"{len(items) - len(reals)} synthetic and {len(reals)} real image(s).")
    items += _attention_items(study, builder, chosen, shapes)
    created = []
    for index, (image, image_b, kind, expected) in enumerate(items):
        created.append(StudyItem(study=study, index=index, kind=kind, image=image, image_b=image_b, expected=expected))
    StudyItem.objects.bulk_create(created)
    regular = [item for item in created if item.kind == ItemKind.REGULAR]
    picks = builder.rng.choice(len(regular), size=min(study.repeated_items, len(regular)), replace=False)
    repeats = [
        StudyItem(
            study=study,
            index=len(created) + n,
            kind=ItemKind.REPEAT,
            image=regular[i].image,
            image_b=regular[i].image_b,
            repeat_of=regular[i],
        )
        for n, i in enumerate(sorted(int(p) for p in picks))
    ]
    StudyItem.objects.bulk_create(repeats)
    builder.log.append(
        f"{len(created) + len(repeats)} items: {len(regular)} regular, {len(repeats)} repeated, "
        f"{len(created) - len(regular)} attention check(s)."
    )


def _attention_items(study, builder, chosen, shapes):
    items = []
    if not study.attention_checks:
        return items
    shown = [case for case, _, _ in chosen]
    for case, intact in _showable_references(study, builder, shown, True, shapes):
        if len(items) == study.attention_checks:
            break
        if study.design == Design.HALLUCINATION:
            altered, where = blinding.attention_image(intact, builder.rng, kind="insert")
            expected = {"marks": True, **where}
        else:
            altered, _ = blinding.attention_image(intact, builder.rng)
            expected = {
                Design.TURING: {"call": "synthetic"},
                Design.LIKERT: {"max_score": 2},
                Design.PAIRWISE: {"winner": "a"},
            }[study.design]
        check = builder.store(altered, case, ImageSource.ATTENTION)
        if study.design == Design.PAIRWISE:
            items.append((builder.store(intact, case, ImageSource.REAL), check, ItemKind.ATTENTION, expected))
        else:
            items.append((check, None, ItemKind.ATTENTION, expected))
    return items
