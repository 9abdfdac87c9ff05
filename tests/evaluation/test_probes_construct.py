"""Probe construction on the demo phantoms: insertions where the truth says, removals gone, k-space consistent."""

import numpy as np
import pytest
from scipy import ndimage

from demo import phantom
from evaluation.probes import construct


@pytest.fixture(scope="module")
def brain():
    # seed 1003 has lesions (checked below), so a removal probe exists
    for seed in range(1000, 1040):
        case = phantom.make_brain_slice(np.random.default_rng(seed))
        if case["lesion_mask"].sum() > 15:
            return case
    raise AssertionError("no phantom with a lesion")


def _regions(case):
    return construct.regions_from_tissue(
        case["tissue"],
        plausible_labels=(phantom.WHITE_MATTER,),
        csf_labels=(phantom.CSF,),
        lesion_labels=(phantom.LESION,),
    )


def _levels(case):
    return construct.lesion_levels([case["t1"][None]], [case["t2"][None]], [case["lesion_mask"]])


def _probes(case, seed=0, reconstruction=False, kinds=construct.KINDS):
    if reconstruction:
        mask = phantom.undersampling_mask(case["t2"].shape, seed=7)
        image_in = phantom.undersample(case["t2"], mask)
    else:
        image_in = case["t1"][None]
    probes, skipped = construct.build_probes(
        input=image_in,
        reference=case["t2"][None],
        label=case["lesion_mask"],
        regions=_regions(case),
        rng=np.random.default_rng(seed),
        levels=_levels(case),
        kinds=kinds,
        reconstruction=reconstruction,
    )
    return {p.kind: p for p in probes}, skipped


def test_lesion_levels_are_the_phantoms_lesion_contrasts(brain):
    (t1_level,), t2_level = _levels(brain)
    lesion = brain["lesion_mask"] > 0
    assert t1_level == pytest.approx(brain["t1"][lesion].mean())
    # T1: lesion darker than white matter; T2: brighter than white matter (demo.phantom's contrasts)
    white = brain["tissue"] == phantom.WHITE_MATTER
    assert t1_level < brain["t1"][white].mean() - 0.15
    assert t2_level > brain["t2"][white].mean() + 0.2


@pytest.mark.parametrize(
    ("kind", "tissue"),
    [("inserted_plausible", phantom.WHITE_MATTER), ("inserted_csf", phantom.CSF), ("inserted_outside", 0)],
)
def test_an_inserted_lesion_is_where_the_truth_says(brain, kind, tissue):
    probes, skipped = _probes(brain)
    assert not skipped
    probe = probes[kind]
    truth = probe.truth
    assert truth.expected == "present"
    region = probe.truth_mask > 0
    row, col = (int(round(v)) for v in truth.centre)
    assert region[row, col]
    assert brain["tissue"][row, col] == tissue
    assert truth.area_px == region.sum() and 15 <= truth.area_px <= 80
    # the input changed only at the lesion (its partial-volume edge reaches < 4 px out)
    changed = np.abs(probe.input[0] - brain["t1"]) > 1e-6
    near = ndimage.binary_dilation(region, structure=construct.disk(4))
    assert changed[region].all() and not changed[~near].any()
    # at the lesion level in both contrasts (T1 dark, T2 bright), and the truth's contrast is the truth image's
    # (a CSF lesion is a few px across in a narrow CSF space: the kept high-pass residual includes some anatomy)
    (t1_level,), t2_level = _levels(brain)
    tolerance = 0.1 if kind == "inserted_csf" else 0.06
    assert probe.input[0][region].mean() == pytest.approx(t1_level, abs=tolerance)
    assert probe.reference[0][region].mean() == pytest.approx(t2_level, abs=tolerance)
    assert truth.contrast == pytest.approx(construct.region_contrast(probe.reference, region))
    # visible in the input: a lesion in CSF is brighter than CSF on T1 (and faint on T2, where CSF is brightest)
    input_contrast = construct.region_contrast(probe.input, region)
    if kind == "inserted_csf":
        assert input_contrast > 0.1 and abs(truth.contrast) > 0.05
    else:
        assert abs(input_contrast) > 0.15 and abs(truth.contrast) > 0.2
    # only a plausible lesion joins the label mask
    assert (probe.label[region] > 0).all() == (kind == "inserted_plausible")


def test_a_removed_lesion_is_gone_from_the_input_and_the_truth(brain):
    probes, _ = _probes(brain)
    probe = probes["removed"]
    region = probe.truth_mask > 0
    assert probe.truth.expected == "absent"
    assert (brain["lesion_mask"][region] > 0).all() and not probe.label[region].any()
    before_t1 = construct.region_contrast(brain["t1"], region)
    before_t2 = construct.region_contrast(brain["t2"], region)
    assert before_t1 < -0.15 and before_t2 > 0.2
    assert probe.truth.contrast == pytest.approx(before_t2)
    # gone: the contrast to the surrounding tissue is a small fraction of the lesion's
    assert abs(construct.region_contrast(probe.input, region)) < 0.2 * abs(before_t1)
    assert abs(construct.region_contrast(probe.reference, region)) < 0.2 * abs(before_t2)
    # the filled patch has the surrounding noise (not conspicuously smooth)
    ring = construct.ring_mask(region)
    residual = probe.input[0] - ndimage.gaussian_filter(probe.input[0].astype(float), 1.5)
    assert residual[region].std() > 0.3 * residual[ring].std()


def test_a_control_changes_nothing(brain):
    probes, _ = _probes(brain)
    probe = probes["control"]
    assert probe.truth.expected == "absent"
    np.testing.assert_array_equal(probe.input[0], brain["t1"])
    np.testing.assert_array_equal(probe.reference[0], brain["t2"])
    assert brain["tissue"][tuple(int(round(v)) for v in probe.truth.centre)] == phantom.WHITE_MATTER


def test_reconstruction_probes_resample_their_kspace_from_the_changed_image(brain):
    mask = phantom.undersampling_mask(brain["t2"].shape, seed=7)
    probes, _ = _probes(brain, reconstruction=True)
    for kind in ("inserted_plausible", "inserted_outside", "removed"):
        probe = probes[kind]
        expected = phantom.undersample(probe.reference[0], mask)
        np.testing.assert_allclose(probe.input, expected, atol=2e-6)
        # unmeasured lines stay zero, and the zero-filled image carries (or lacks) the structure
        assert not probe.input[:, mask == 0].any()
        region = probe.truth_mask > 0
        zero_filled = phantom.zero_filled(probe.input)
        original = phantom.zero_filled(phantom.undersample(brain["t2"], mask))
        shift = zero_filled[region].mean() - original[region].mean()
        assert np.sign(shift) == (1 if kind != "removed" else -1)


def test_probes_are_seeded(brain):
    first, _ = _probes(brain, seed=5)
    second, _ = _probes(brain, seed=5)
    other, _ = _probes(brain, seed=6)
    for kind, probe in first.items():
        np.testing.assert_array_equal(probe.input, second[kind].input)
        assert probe.truth == second[kind].truth
    assert first["inserted_plausible"].truth.centre != other["inserted_plausible"].truth.centre


def test_harmonic_inpainting_is_exact_on_a_linear_ramp():
    rows, cols = np.mgrid[0:20, 0:20]
    ramp = 0.3 * rows - 0.2 * cols + 1.0
    hole = np.zeros_like(ramp, dtype=bool)
    hole[6:13, 5:14] = True
    damaged = ramp.copy()
    damaged[hole] = 9.0
    np.testing.assert_allclose(construct.harmonic_inpaint(damaged, hole), ramp, atol=1e-10)


def test_regions_from_images_without_a_tissue_map(brain):
    regions = construct.regions_from_images(brain["t2"], label=brain["lesion_mask"])
    head = brain["tissue"] > 0
    assert (regions.body & head).sum() / head.sum() > 0.97
    assert not (regions.outside & head).any()
    assert regions.plausible.any() and not (regions.plausible & (brain["lesion_mask"] > 0)).any()
    assert not regions.csf.any()


def test_a_case_without_lesions_skips_the_removal_and_unknown_kinds_are_refused(brain):
    empty = dict(brain, lesion_mask=np.zeros_like(brain["lesion_mask"]))
    probes, skipped = construct.build_probes(
        input=brain["t1"][None],
        reference=brain["t2"][None],
        label=empty["lesion_mask"],
        regions=_regions(brain),
        rng=np.random.default_rng(0),
        levels=_levels(brain),
        kinds=("removed", "control"),
    )
    assert [p.kind for p in probes] == ["control"] and "no lesion" in skipped["removed"]
    with pytest.raises(construct.ProbeError, match="unknown probe kind"):
        _probes(brain, kinds=("teleported",))
