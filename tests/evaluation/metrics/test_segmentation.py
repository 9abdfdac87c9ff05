"""The downstream tier's computation (evaluation/segmentation.py): metrics, split, training, summaries.

Dice and HD95 are checked on hand-made masks against values worked out by hand and against an
HD95 written here with scipy's distance transform (MONAI's definition: boundary voxels, the
95th percentile of the distances each way, the larger of the two).
"""

import math

import numpy as np
import pytest
from scipy import ndimage

from demo.phantom import make_brain_slice
from evaluation import segmentation as seg
from evaluation.metrics import bootstrap

TINY = seg.SegmentationConfig(name="tiny", channels=(4, 8), epochs=3, batch_size=4, crop=32, threads=1)


def masks(shape, *boxes):
    """(N, 1, *shape) uint8 masks, box i (a tuple of slices, or None for empty) in case i."""
    out = np.zeros((len(boxes), 1, *shape), dtype=np.uint8)
    for i, box in enumerate(boxes):
        if box is not None:
            out[(i, 0, *box)] = 1
    return out


# ------------------------------------------------------------------------------- metrics


def test_dice_matches_hand_computed_overlaps():
    # case 0: two 4×4 squares overlapping in 4×2 voxels → 2·8 / (16 + 16) = 0.5
    # case 1: identical → 1; case 2: disjoint → 0; case 3: 3×3 inside 3×6 → 2·9 / (9 + 18) = 2/3
    pred = masks((16, 16), np.s_[2:6, 2:6], np.s_[1:4, 1:4], np.s_[0:2, 0:2], np.s_[5:8, 5:8])
    label = masks((16, 16), np.s_[2:6, 4:8], np.s_[1:4, 1:4], np.s_[8:10, 8:10], np.s_[5:8, 5:11])
    np.testing.assert_allclose(seg.dice_per_case(pred, label), [0.5, 1.0, 0.0, 2 / 3], rtol=1e-6)


def test_dice_of_an_empty_label_is_undefined_and_an_empty_prediction_scores_zero():
    pred = masks((8, 8), None, None)
    label = masks((8, 8), None, np.s_[2:4, 2:4])
    dice = seg.dice_per_case(pred, label)
    assert math.isnan(dice[0]) and dice[1] == 0.0


def reference_hd95(a, b, spacing):
    """HD95 between two non-empty boolean masks, independently: scipy EDT on boundary voxels."""

    def boundary(mask):
        return mask & ~ndimage.binary_erosion(mask)

    def directed(x, y):
        distance_to_y = ndimage.distance_transform_edt(~boundary(y), sampling=spacing)
        return np.percentile(distance_to_y[boundary(x)], 95)

    return max(directed(a, b), directed(b, a))


def test_hd95_in_mm_matches_hand_values_with_anisotropic_spacing():
    # The same 5×5 square shifted by 3 voxels along x (1 mm) or along y (2 mm): every boundary
    # voxel's nearest counterpart lies 3 voxels away at most, and most of them exactly 3 away.
    square = np.s_[4:9, 4:9]
    pred = masks((20, 20), square, square)
    label = masks((20, 20), np.s_[4:9, 7:12], np.s_[7:12, 4:9])
    hd95 = seg.hd95_per_case(pred, label, spacing=[2.0, 1.0])
    np.testing.assert_allclose(hd95, [3.0, 6.0])


def test_hd95_matches_an_independent_scipy_implementation_on_irregular_masks():
    rng = np.random.default_rng(7)
    shape = (40, 48)
    pred, label = [], []
    for _ in range(5):
        for target in (pred, label):
            blob = ndimage.gaussian_filter(rng.random(shape), 3) > 0.52
            blob[0, 0] = True  # never empty
            target.append(blob[None])
    pred, label = np.stack(pred), np.stack(label)
    spacing = [1.5, 0.7]
    expected = [reference_hd95(p[0], t[0], spacing) for p, t in zip(pred, label, strict=True)]
    np.testing.assert_allclose(seg.hd95_per_case(pred, label, spacing), expected, rtol=1e-6)


def test_hd95_of_an_empty_prediction_is_the_image_diagonal_and_of_an_empty_label_undefined():
    pred = masks((10, 20), None, np.s_[1:3, 1:3])
    label = masks((10, 20), np.s_[2:4, 2:4], None)
    hd95 = seg.hd95_per_case(pred, label, spacing=[2.0, 1.0])
    assert hd95[0] == pytest.approx(math.hypot(9 * 2.0, 19 * 1.0))
    assert math.isnan(hd95[1])


# --------------------------------------------------------------------------------- split


def test_split_never_puts_a_case_in_both_sets_and_tests_only_labelled_cases():
    ids = [f"case{i:02d}" for i in range(30)]
    labelled = [i % 4 != 0 for i in range(30)]  # 22 labelled, 8 empty
    for seed in range(20):
        train, test = seg.split_cases(ids, labelled, test_fraction=0.5, seed=seed)
        assert not set(train) & set(test)
        assert set(train) | set(test) == set(ids)
        assert len(test) == 11
        assert all(labelled[ids.index(c)] for c in test)
        assert {c for c, flag in zip(ids, labelled, strict=True) if not flag} <= set(train)
    assert seg.split_cases(ids, labelled, seed=3) == seg.split_cases(ids, labelled, seed=3)
    assert seg.split_cases(ids, labelled, seed=3) != seg.split_cases(ids, labelled, seed=4)


def test_split_keeps_one_labelled_case_on_each_side_and_refuses_too_few():
    train, test = seg.split_cases(["a", "b", "c"], [True, True, False], test_fraction=0.99)
    assert test in (["a"], ["b"]) and len(train) == 2
    with pytest.raises(ValueError, match="at least two"):
        seg.split_cases(["a", "b"], [True, False])


# ------------------------------------------------------------------------------ training


def phantom_arrays(n, size=64, offset=0):
    slices = [make_brain_slice(np.random.default_rng(500 + offset + i), size=size) for i in range(n)]
    images = np.stack([s["t2"][None] for s in slices])
    labels = np.stack([s["lesion_mask"][None] for s in slices])
    return images, labels


def test_the_same_seed_gives_the_same_network_and_dice_twice():
    images, labels = phantom_arrays(6)
    test_images, test_labels = phantom_arrays(3, offset=50)
    runs = []
    for seed in (0, 0, 1):
        trained = seg.train_segmenter(images, labels, TINY, seed)
        pred = seg.predict(trained.network, test_images, TINY)
        runs.append((trained.losses, pred, seg.dice_per_case(pred, test_labels)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    assert runs[0][0] != runs[2][0]  # another seed trains another network


def test_training_reports_every_epoch_and_can_be_stopped_from_the_callback():
    images, labels = phantom_arrays(4)
    seen = []

    class Stop(Exception):
        pass

    def on_epoch(epoch, loss):
        seen.append((epoch, loss))
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        seg.train_segmenter(images, labels, TINY, 0, on_epoch=on_epoch)
    assert [epoch for epoch, _ in seen] == [1, 2] and all(math.isfinite(loss) for _, loss in seen)


def test_a_diverging_training_raises_non_finite_loss_with_when():
    images, labels = phantom_arrays(4)
    diverging = seg.SegmentationConfig(name="diverging", channels=(4, 8), epochs=5, crop=32, learning_rate=1e12)
    with pytest.raises(seg.NonFiniteLoss, match=r"became nan at epoch \d+, step \d+ \(seed 0\)"):
        seg.train_segmenter(images, labels, diverging, 0)


def test_odd_sizes_and_volumes_segment_to_their_own_shape():
    rng = np.random.default_rng(0)
    images = rng.random((3, 2, 10, 13, 15)).astype(np.float32)  # two channels, 3D, not multiples of 2
    labels = (images[:, :1] > 0.7).astype(np.uint8)
    trained = seg.train_segmenter(images, labels, TINY, 0)
    pred = seg.predict(trained.network, images, TINY)
    assert pred.shape == (3, 1, 10, 13, 15) and set(np.unique(pred)) <= {0, 1}


def test_config_round_trips_through_a_dict():
    config = seg.SegmentationConfig(name="x", channels=(4, 8, 16), epochs=7)
    assert seg.SegmentationConfig.from_dict(config.as_dict()) == config
    assert seg.SegmentationConfig.from_dict({"epochs": 2, "unknown": 1}).epochs == 2


# ----------------------------------------------------------------------------- summaries


def test_summary_with_one_seed_is_the_case_bootstrap_of_the_mean():
    values = np.random.default_rng(1).random((1, 12))
    summary = seg.summarise(values, n_resamples=500, seed=4)
    expected = bootstrap.bootstrap_mean_ci(values[0], n_resamples=500, seed=4)
    assert summary.estimate == pytest.approx(values.mean())
    assert (summary.low, summary.high) == pytest.approx((expected.low, expected.high), rel=1e-12)


def test_summary_resamples_seeds_as_well_as_cases():
    rng = np.random.default_rng(2)
    values = rng.random((3, 10)) * 0.1 + np.array([[0.2], [0.5], [0.8]])  # seeds differ a lot
    summary = seg.summarise(values, n_resamples=400, seed=0)
    # A two-way bootstrap written out with the same draws:
    # cases from default_rng(seed), seeds from default_rng([seed, 1]).
    case_draws = np.random.default_rng(0).integers(0, 10, size=(400, 10))
    seed_rng = np.random.default_rng([0, 1])
    means = [values[np.ix_(seed_rng.integers(0, 3, 3), idx)].mean() for idx in case_draws]
    assert summary.estimate == pytest.approx(values.mean())
    assert summary.low == pytest.approx(np.percentile(means, 2.5))
    assert summary.high == pytest.approx(np.percentile(means, 97.5))
    cases_only = bootstrap.bootstrap_mean_ci(values.mean(axis=0), n_resamples=400, seed=0)
    assert summary.high - summary.low > 3 * (cases_only.high - cases_only.low)


def test_utility_ratio_is_the_ratio_of_mean_dice_with_a_paired_interval():
    rng = np.random.default_rng(3)
    reference = 0.6 + 0.1 * rng.random((3, 15))
    run = 0.5 * reference + 0.02 * rng.random((3, 15))
    ratio = seg.utility_ratio(run, reference, n_resamples=300, seed=0)
    assert ratio.estimate == pytest.approx(run.mean() / reference.mean())
    assert ratio.low < ratio.estimate < ratio.high
    assert 0.45 < ratio.low and ratio.high < 0.6
    with pytest.raises(ValueError, match="mean Dice of 0"):
        seg.utility_ratio(run, np.zeros_like(reference))
