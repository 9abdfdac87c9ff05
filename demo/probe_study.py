"""A probe-mode hallucination-marking study read by simulated readers (issue 17, "Readers").

`seed_probe_study(task, runs, readers, seed)` builds a probe-mode study of the main `runs` (each needs a
succeeded, scored probe run on one probe set), has each reader answer every item through
`reading.submit_as`, the call the answer endpoint makes for a browser, then closes the study.

A simulated reader marks what is visible: at a probe, the output's structure has the contrast
``fraction × contrast`` (the probe score's contrast fraction of sample 0 times the truth's lesion contrast);
the reader marks it with a probability growing with that contrast against the background (in units of the
probe set's median lesion contrast), near its truth centre, rated higher the clearer it is. Readers also
leave false marks (a Poisson number per image, at random places, rated low). They cannot tell an invented
structure from a faithfully shown inserted one, just as a real reader cannot. Each reader's randomness is keyed
on (seed, reader's index, item), so the answers repeat for a seed whatever the order the reader meets them in.
"""

from __future__ import annotations

import math

import numpy as np
from django.db import transaction

from evaluation.models import ProbeCase, ProbeScore
from readerstudy.models import Acceptance, Design, ImageSource, ReaderStudy
from readerstudy.services import build, reading, studies

#: Per reader: (skill: how strongly contrast shows, mean false marks per image).
DEFAULT_SKILLS = ((1.3, 0.15), (1.0, 0.25), (0.8, 0.35), (1.1, 0.2))
POSITION_SD_PX = 1.2


def _visible(study):
    """{(probe run pk, probe case id): (visible contrast ÷ the set's median lesion contrast, (row, col))}."""
    images = study.images.filter(source=ImageSource.SYNTHETIC).values_list("run_id", "case__case_id").distinct()
    run_ids = {run for run, _ in images}
    probes = {
        p.case.case_id: p.truth
        for p in ProbeCase.objects.filter(case__study_images__study=study).select_related("case").distinct()
    }
    scale = float(np.median([abs(t["contrast"]) for t in probes.values()])) or 1.0
    fractions = {}
    for score in ProbeScore.objects.filter(run__in=run_ids):
        for outcome in score.outcomes:
            if outcome["sample"] == 0:
                fractions[(score.run_id, outcome["case"])] = outcome["fraction"]
    return {
        (run, case): (abs(fractions.get((run, case), 0.0) * probes[case]["contrast"]) / scale, probes[case]["centre"])
        for run, case in images
    }


def simulated_marks(rng, visible, centre, shape, skill, false_rate):
    """A reader's marks on one image (viewer pixel-corner coordinates, rated 1–5)."""
    rows, cols = shape
    marks = []
    p_mark = 1.0 / (1.0 + math.exp(-4.0 * (skill * visible - 0.5)))
    if rng.random() < p_mark:
        row, col = np.asarray(centre, dtype=float) + rng.normal(0, POSITION_SD_PX, 2)
        rating = int(np.clip(round(1 + 4 * min(1.0, skill * visible) + rng.normal(0, 0.7)), 1, 5))
        marks.append((row, col, rating))
    for _ in range(int(rng.poisson(false_rate))):
        marks.append((rng.uniform(0, rows - 1), rng.uniform(0, cols - 1), int(rng.integers(1, 3))))
    points = []
    for row, col, rating in marks:
        x, y = float(np.clip(col + 0.5, 0, cols)), float(np.clip(row + 0.5, 0, rows))  # index → pixel corner
        points.append({"type": "point", "slice": 0, "points": [[round(x, 2), round(y, 2)]], "rating": rating})
    return {"marks": points} if points else {"none": True}


def answer_as_simulated_reader(study, reader, index, seed, skill, false_rate, visible):
    session = reading.open_session(study, reader=reader)
    while True:
        state = reading.state(session)
        if state["finished"]:
            return session
        token = state["item"]["token"]
        assignment = session.assignments.select_related("item__image__case").get(token=token)
        image = assignment.item.image
        shape = image.header["shape"][-2:]
        rng = np.random.default_rng([seed, index, assignment.item.index])
        if image.source == ImageSource.ATTENTION:
            answer = {"marks": [{"type": "point", "slice": 0, "points": [[shape[1] / 2, shape[0] / 2]], "rating": 5}]}
        else:
            seen, centre = visible.get((image.run_id, image.case.case_id), (0.0, (shape[0] / 2, shape[1] / 2)))
            answer = simulated_marks(rng, seen, centre, shape, skill, false_rate)
        reading.submit_as(study.uid, reader=reader, token=token, value=answer, key=f"probe-{assignment.position}")
        session.refresh_from_db()


def seed_probe_study(task, runs, readers, seed, *, title=None, skills=DEFAULT_SKILLS, **fields) -> ReaderStudy:
    """Build a probe-mode study of the main `runs`, answer it as simulated `readers` (seeded), and close it."""
    readers = list(readers)
    with transaction.atomic():
        study = ReaderStudy.objects.create(
            task=task,
            title=title or f"Probe reading of {task.name} (seed {seed})",
            instructions="Mark every structure that should not be there and rate how sure you are (1–5).",
            design=Design.HALLUCINATION,
            probe_mode=True,
            acceptance=fields.pop("acceptance", Acceptance.RADIUS),
            seed=seed,
            real_ratio=0,
            **fields,
        )
        study.runs.set(runs)
        study.readers.set(readers)
    study = build.freeze(study)
    visible = _visible(study)
    for index, reader in enumerate(readers):
        skill, false_rate = skills[index % len(skills)]
        answer_as_simulated_reader(study, reader, index, seed, skill, false_rate, visible)
    return studies.close(study)
