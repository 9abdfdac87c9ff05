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

from .. import blinding, permissions
from ..errors import StudyError
from ..models import Design, ImageSource, ItemKind, ReaderStudy, RealPool, StudyImage, StudyItem, StudyStatus
from . import probe_build
from .eligibility import check_readers
from .reading import open_session
from .sources import Source, synthetic_sources


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
            builder = _Builder(study)
            _build_items(study, builder)
            _refuse_exposed(study)
            check_readers(study, study.readers.all())
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


def _refuse_exposed(study):
    """A study whose source arrays anonymous users can reach cannot start: its readers could fetch them
    logged out and match its images."""
    hashes = StudyImage.objects.filter(study=study).exclude(source_sha256="").values_list("source_sha256", flat=True)
    exposed = permissions.exposed_sources(hashes)
    if exposed:
        where = ", ".join(f"the {label} '{name}'" for label, name in exposed)
        raise StudyError(
            f"Anyone logged out can see images this study would show, through {where}: its readers could match "
            "them. Hide that task's test set (or make the dataset private) first."
        )


class _Builder:
    """Chooses, blinds and stores the study's images; one instance per freeze.

    Images are chosen first (each source's plane checked and its dither step measured), then blinded
    with the study's one dither step and stored, so every image gets the same treatment."""

    def __init__(self, study):
        self.study = study
        self.rng = np.random.default_rng(study.seed)
        self.dither = np.random.default_rng([study.seed, 3])
        self.log = []
        self.steps = []
        self.step = None
        # One display spacing for every image: a spacing only some real images have would give them away.
        self.spacing = None

    def check(self, load):
        """Measure a source before it is chosen (NotShowable if it cannot be shown)."""
        self.steps.append(blinding.relative_step(blinding.shown_plane(load())))

    def settle(self):
        self.step = blinding.study_step(self.steps)
        self.log.append(f"Dither: {self.step:.3g} of each image's range (the largest source step of the study).")

    def blinded(self, source):
        return blinding.blind(source.load(), self.dither, self.step)

    def store(self, blinded, source, kind=None):
        header = arrays.header(blinded, self.spacing)
        image = StudyImage(
            study=self.study,
            source=kind or source.kind,
            run=source.run,
            case=source.case,
            header=header,
            source_sha256=source.sha256,
        )
        image.array.save("image.npy", ContentFile(array_bytes(blinded)), save=False)
        image.save()
        return image

    def image(self, source):
        return self.store(self.blinded(source), source)


def _usable_cases(study, builder, runs, count):
    """Pick `count` cases (seeded) where every run has a showable output of the reference's shape.

    Returns [(case, reference image, {run pk: output source})]."""
    cases = list(Case.objects.filter(dataset=study.task.dataset, images__role=ImageRole.REFERENCE).order_by("pk"))
    order = builder.rng.permutation(len(cases))
    outputs = {(o.run_id, o.case_id): o for o in CaseOutput.objects.filter(run__in=runs, sample=0, case__in=cases)}
    chosen, skipped = [], []
    for index in order:
        if len(chosen) == count:
            break
        case = cases[index]
        reference = case.image(ImageRole.REFERENCE)
        sources, why = synthetic_sources(builder, case, reference, runs, outputs)
        if sources is None:
            skipped.append(why)
        else:
            chosen.append((case, reference, sources))
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


def _real_candidates(study, shown_cases):
    """Reference images for the real pool, in a seeded order: never a case shown as synthetic (a reader
    could compare the two), unless the editor asked for paired cases (then those come first)."""
    if study.real_pool == RealPool.REFERENCE:
        if study.task.reference_dataset_id is None:
            raise StudyError("The task has no reference dataset; pick its test dataset's references instead.")
        dataset = study.task.reference_dataset
    else:
        dataset = study.task.dataset
    cases = list(Case.objects.filter(dataset=dataset, images__role=ImageRole.REFERENCE).order_by("pk"))
    shown = {case.pk for case in shown_cases}
    rng = np.random.default_rng([study.seed, 2])
    other = [case for case in cases if case.pk not in shown]
    other = [other[i] for i in rng.permutation(len(other))]
    if not study.paired_cases:
        return other
    same = [case for case in cases if case.pk in shown]
    return [same[i] for i in rng.permutation(len(same))] + other


def _showable_references(study, builder, shown_cases, shapes, exclude=()):
    """Sources of real images from the real pool, lazily: only references of the outputs' size."""
    for case in _real_candidates(study, shown_cases):
        if case.pk in exclude:
            continue
        reference = case.image(ImageRole.REFERENCE)
        if tuple(reference.shape[1:]) not in shapes:
            continue  # another size would tell a real image from a synthetic one
        try:
            builder.check(reference.load)
        except blinding.NotShowable:
            continue
        yield Source(reference.load, reference.content_sha256, case, ImageSource.REAL)


def _real_sources(study, builder, count, shown_cases, shapes):
    sources = []
    for source in _showable_references(study, builder, shown_cases, shapes):
        if len(sources) == count:
            break
        sources.append(source)
    if len(sources) < count:
        pairing = "" if study.paired_cases else " of cases not shown as synthetic"
        builder.log.append(
            f"Real pool: {len(sources)} showable image(s){pairing} of the outputs' size, {count} asked for; "
            "the study has fewer real items."
        )
    return sources


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


def _synthetic_sources(study, builder, runs):
    """(sources per run pk, the cases shown, their shapes), with the builder's display spacing set."""
    if study.probe_mode:  # the main runs' probe runs, one item per probe case and run
        per_run, builder.spacing, shapes, shown = probe_build.probe_sources(study, builder, runs)
        return per_run, shown, shapes
    n = study.items_per_model
    # A Turing test shows each run cases of its own unless the editor asks for paired cases: a reader who
    # met the same anatomy once per run would know that all but (at most) one of them are synthetic.
    own_cases = study.design == Design.TURING and not study.paired_cases and len(runs) > 1
    chosen = _usable_cases(study, builder, runs, n * len(runs) if own_cases else n)
    builder.spacing = chosen[0][1].spacing
    shapes = {tuple(reference.shape[1:]) for _, reference, _ in chosen}
    shown = [case for case, _, _ in chosen]
    per_run = {run.pk: [] for run in runs}
    for position, (_case, _reference, sources) in enumerate(chosen):
        for index, run in enumerate(runs):
            if not own_cases or position // n == index:
                per_run[run.pk].append(sources[run.pk])
    return per_run, shown, shapes


def _build_items(study, builder):
    runs = list(study.runs.order_by("pk"))
    n = study.items_per_model
    per_run, shown, shapes = _synthetic_sources(study, builder, runs)
    reals = []
    if study.design != Design.PAIRWISE and not study.probe_mode:  # probe truth is about the runs' outputs
        synthetic = sum(len(items) for items in per_run.values())
        n_real = round(study.real_ratio * (synthetic if study.design == Design.TURING else n))
        reals = _real_sources(study, builder, n_real, shown, shapes) if n_real else []
    attention = _attention_sources(study, builder, shown, shapes, exclude={source.case.pk for source in reals})
    builder.settle()  # every source measured: one dither for them all

    images = {run_pk: [builder.image(source) for source in sources] for run_pk, sources in per_run.items()}
    real_images = [builder.image(source) for source in reals]
    sources_of = {image.pk: source for image, source in zip(real_images, reals, strict=True)}
    for run_pk, sources in per_run.items():
        sources_of.update({image.pk: source for image, source in zip(images[run_pk], sources, strict=True)})
    items = []  # (image, image_b, kind, expected)
    if study.design == Design.PAIRWISE:
        for position in range(n):
            for i, run_a in enumerate(runs):
                for run_b in runs[i + 1 :]:
                    items.append((images[run_a.pk][position], images[run_b.pk][position], ItemKind.REGULAR, {}))
    else:
        for run_pk in per_run:
            items += [(image, None, ItemKind.REGULAR, {}) for image in images[run_pk]]
        items += [(image, None, ItemKind.REGULAR, {}) for image in real_images]
        builder.log.append(f"{len(items) - len(reals)} synthetic and {len(reals)} real image(s).")
    items += _attention_items(study, builder, attention)
    created = []
    for index, (image, image_b, kind, expected) in enumerate(items):
        created.append(StudyItem(study=study, index=index, kind=kind, image=image, image_b=image_b, expected=expected))
    StudyItem.objects.bulk_create(created)
    _repeats(study, builder, created, sources_of)


def _repeats(study, builder, created, sources_of):
    """Repeated items show the same source again, blinded afresh: the same picture, never the same bytes."""
    regular = [item for item in created if item.kind == ItemKind.REGULAR]
    picks = builder.rng.choice(len(regular), size=min(study.repeated_items, len(regular)), replace=False)
    repeats = []
    for number, i in enumerate(sorted(int(p) for p in picks)):
        original = regular[i]
        again = [builder.image(sources_of[image.pk]) if image else None for image in (original.image, original.image_b)]
        repeats.append(
            StudyItem(
                study=study,
                index=len(created) + number,
                kind=ItemKind.REPEAT,
                image=again[0],
                image_b=again[1],
                repeat_of=original,
            )
        )
    StudyItem.objects.bulk_create(repeats)
    builder.log.append(
        f"{len(created) + len(repeats)} items: {len(regular)} regular, {len(repeats)} repeated, "
        f"{len(created) - len(regular)} attention check(s)."
    )


def _attention_sources(study, builder, shown, shapes, exclude):
    if not study.attention_checks:
        return []
    sources = []
    for source in _showable_references(study, builder, shown, shapes, exclude=exclude):
        if len(sources) == study.attention_checks:
            break
        sources.append(source)
    return sources


def _attention_items(study, builder, sources):
    items = []
    for source in sources:
        intact = builder.blinded(source)
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
        check = builder.store(altered, source, kind=ImageSource.ATTENTION)
        if study.design == Design.PAIRWISE:
            items.append((builder.store(intact, source), check, ItemKind.ATTENTION, expected))
        else:
            items.append((check, None, ItemKind.ATTENTION, expected))
    return items
