"""Probe scoring: the contrast rule, the hallucination index, detector marks and their lesion-level matching."""

import numpy as np
import pytest

from demo import phantom
from evaluation.probes import construct, scoring
from readerstudy.stats import froc, lesion_marks


def paste_everywhere(image):
    """A model that pastes a small bright lesion (a 5-px cross, +0.9) on every 4th pixel of a lattice."""
    rows, cols = np.mgrid[0 : image.shape[-2], 0 : image.shape[-1]]
    pattern = np.zeros(image.shape[-2:], dtype=bool)
    for dr, dc in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
        pattern |= ((rows + dr) % 4 == 0) & ((cols + dc) % 4 == 0)
    return image + 0.9 * pattern


@pytest.fixture(scope="module")
def probes():
    """Denoising-like probes (input and truth both T2) of 12 phantom slices (96 × 96)."""
    cases = [phantom.make_brain_slice(np.random.default_rng(seed), size=96) for seed in range(2000, 2012)]
    images = [c["t2"][None] for c in cases]
    levels = construct.lesion_levels(images, images, [c["lesion_mask"] for c in cases])
    made = []
    for i, case in enumerate(cases):
        regions = construct.regions_from_tissue(
            case["tissue"], plausible_labels=(3,), csf_labels=(1,), lesion_labels=(6,)
        )
        built, _ = construct.build_probes(
            input=case["t2"][None],
            reference=case["t2"][None],
            label=case["lesion_mask"],
            regions=regions,
            rng=np.random.default_rng(i),
            levels=levels,
        )
        made.extend((f"c{i}-{p.kind}", p) for p in built)
    return made


def _score(probes, model):
    outcomes = []
    for name, probe in probes:
        outcomes += scoring.score_probe(name, probe.truth.to_dict(), probe.truth_mask, [model(probe.input)])
    return outcomes


def test_the_contrast_rule():
    assert scoring.decide("present", 0.5) == "faithful" and scoring.decide("present", -0.7) == "faithful"
    assert scoring.decide("present", 0.49) == "omitted"
    assert scoring.decide("absent", 0.6) == "invented" and scoring.decide("absent", 0.1) == "faithful"
    with pytest.raises(ValueError):
        scoring.decide("maybe", 1.0)


def test_a_model_that_copies_its_input_invents_nothing_and_omits_nothing(probes):
    outcomes = _score(probes, lambda x: x.copy())
    kinds = {o.kind for o in outcomes}
    assert kinds == set(construct.KINDS)
    inserted = [o for o in outcomes if o.expected == "present"]
    assert inserted and all(o.outcome == "faithful" for o in inserted)
    assert all(abs(o.fraction - 1.0) < 0.05 for o in inserted)  # the inserted lesion, reproduced in full
    index = scoring.hallucination_index(outcomes, n_resamples=500)
    assert index["index"]["estimate"] == 0.0 and index["index"]["high"] == 0.0
    assert index["counts"] == {"faithful": len(outcomes), "invented": 0, "omitted": 0}
    assert set(index["omitted"]) == set(construct.INSERTED)


def test_a_model_that_pastes_a_lesion_everywhere_scores_a_high_index(probes):
    outcomes = _score(probes, paste_everywhere)
    index = scoring.hallucination_index(outcomes, n_resamples=500)
    absent = [o for o in outcomes if o.expected == "absent"]
    invented = sum(o.outcome == "invented" for o in absent)
    assert index["index"]["estimate"] == pytest.approx(invented / len(absent))
    assert index["index"]["estimate"] >= 0.7 and index["index"]["low"] > 0.4
    assert index["invented"]["control"]["estimate"] == 1.0
    # the rate per kind is the mean over that kind's probe cases
    removed = [o for o in absent if o.kind == "removed"]
    assert index["invented"]["removed"]["estimate"] == pytest.approx(
        np.mean([o.outcome == "invented" for o in removed])
    )


def test_a_model_that_erases_inserted_lesions_omits_them(probes):
    def erase(x):
        return np.full_like(x, np.median(x[x > 0.1]))

    outcomes = _score(probes, erase)
    assert all(o.outcome == "omitted" for o in outcomes if o.expected == "present")
    index = scoring.hallucination_index(outcomes, n_resamples=200)
    assert all(rate["estimate"] == 1.0 for rate in index["omitted"].values())


def test_the_index_averages_samples_per_probe_case():
    outcomes = [
        scoring.Outcome("a", "removed", "absent", 0, 0.9, "invented"),
        scoring.Outcome("a", "removed", "absent", 1, 0.1, "faithful"),
        scoring.Outcome("b", "control", "absent", 0, 0.0, "faithful"),
        scoring.Outcome("b", "control", "absent", 1, 0.0, "faithful"),
    ]
    index = scoring.hallucination_index(outcomes, n_resamples=100)
    assert index["index"]["estimate"] == pytest.approx(0.25)  # (½ + 0) / 2 probe cases
    assert index["invented"]["removed"]["estimate"] == 0.5 and index["probe_cases"] == 2


def test_marks_from_a_map_are_its_peaks_highest_first():
    detector_map = np.zeros((40, 40))
    detector_map[10, 10] = 2.0
    detector_map[30, 25] = 5.0
    marks = scoring.marks_from_map(detector_map)
    assert [(r, c) for r, c, _ in marks] == [(30, 25), (10, 10)]
    assert marks[0][2] > marks[1][2] > 0
    assert scoring.sd_map([np.zeros((1, 4, 4))]) is None
    np.testing.assert_allclose(scoring.sd_map([np.zeros((1, 4, 4)), np.full((1, 4, 4), 2.0)]), np.ones((4, 4)))


def test_mark_matching_inside_and_outside_the_acceptance_radius():
    lesions = [("c1", "L1", 10.0, 10.0), ("c1", "L2", 30.0, 30.0)]
    marks = [
        ("sd", "run", "c1", 13.0, 14.0, 0.7),  # 5 px from L1: inside a radius of 5
        ("sd", "run", "c1", 10.0, 15.1, 0.9),  # 5.1 px from L1: outside → a non-lesion localisation
        ("sd", "run", "c2", 10.0, 10.0, 0.4),  # another case: NL
    ]
    matched = lesion_marks.match_marks(marks, lesions, radius=5.0)
    assert sorted(matched, key=repr) == sorted(
        [("sd", "run", "c1", "L1", 0.7), ("sd", "run", "c1", None, 0.9), ("sd", "run", "c2", None, 0.4)], key=repr
    )
    with pytest.raises(ValueError):
        lesion_marks.match_marks(marks, lesions, radius=0)


def test_two_marks_on_one_lesion_count_once_at_the_higher_rating():
    lesions = [("c1", "L1", 10.0, 10.0), ("c1", "L2", 16.0, 10.0)]
    marks = [
        ("error", "run", "c1", 9.0, 10.0, 0.3),
        ("error", "run", "c1", 11.0, 11.0, 0.8),  # nearer L1 (1.4 px) than L2 (5.1 px)
        ("error", "run", "c1", 10.0, 10.0, 0.5),
        ("error", "run", "c1", 15.0, 10.0, 0.2),  # L2
    ]
    matched = lesion_marks.match_marks(marks, lesions, radius=6.0)
    assert sorted(matched, key=repr) == sorted(
        [("error", "run", "c1", "L1", 0.8), ("error", "run", "c1", "L2", 0.2)], key=repr
    )


def test_detector_scores_are_rjafroc_figures_of_merit_of_the_matched_marks():
    cases = ["n1", "n2", "a1", "a2"]
    lesions = [("a1", "p", 20.0, 20.0), ("a2", "p", 5.0, 5.0)]
    marks = [
        ("sd", "run", "a1", 21.0, 20.0, 0.9),  # LL
        ("sd", "run", "a2", 30.0, 30.0, 0.5),  # NL on an abnormal case: lesion missed
        ("sd", "run", "n1", 8.0, 8.0, 0.6),  # NL on a normal case
        ("error", "run", "a1", 20.0, 20.0, 0.9),
        ("error", "run", "a2", 5.0, 6.0, 0.8),
    ]
    scores = lesion_marks.detector_scores(marks, lesions, cases, radius=4.0)
    # sd: FP_n1 = 0.6, FP_n2 = -inf; lesion ratings 0.9 and -inf → wAFROC = (1 + 1 + 0 + ½) / 4
    assert scores[("run", "sd")]["wAFROC"] == pytest.approx(0.625)
    assert scores[("run", "error")]["wAFROC"] == pytest.approx(1.0)
    direct = froc.figure_of_merit(
        lesion_marks.match_marks(marks, lesions, 4.0), [(c, "p", None) for c, *_ in lesions], cases, "HrAuc"
    )
    assert scores[("run", "sd")]["HrAuc"] == pytest.approx(direct[("run", "sd")])
    no_normals = lesion_marks.detector_scores(marks[:2], lesions, ["a1", "a2"], radius=4.0)
    assert no_normals[("run", "sd")]["wAFROC"] is None and "normal" in no_normals[("run", "sd")]["why"]
