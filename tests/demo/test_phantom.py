"""Pure tests (no database) for the demo phantom generator and the TorchScript baselines."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from demo import baselines, phantom

TRAIN_SEEDS = range(5000, 5024)  # disjoint from the held-out seeds below
HELD_OUT_SEEDS = range(0, 8)
TRAIN_STEPS = 80  # step budgets (not seconds) keep these trainings reproducible on a busy machine
THREADS = 1  # robust to other processes sharing the cores


def _mae(prediction, target) -> float:
    return float(np.abs(np.asarray(prediction) - np.asarray(target)).mean())


def _run(model_path, inputs: np.ndarray) -> np.ndarray:
    model = torch.jit.load(str(model_path))
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))).numpy()


@pytest.fixture(scope="module")
def held_out():
    return phantom.make_slice_batch(HELD_OUT_SEEDS)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("baselines")
    train = phantom.make_slice_batch(TRAIN_SEEDS)
    paths = {name: directory / filename for name, filename in baselines.BASELINE_FILES.items()}
    baselines.build_identity(paths["identity"])
    baselines.build_intensity_remap(paths["intensity_remap"], train["t1"], train["t2"])
    unet_loss = baselines.build_unet(
        paths["unet"], train["t1"], train["t2"], seconds=math.inf, max_steps=TRAIN_STEPS, seed=0, threads=THREADS
    )
    baselines.build_stochastic_unet(paths["stochastic_unet"], paths["unet"])
    baselines.build_zero_filled(paths["zero_filled"])
    kspaces, _ = phantom.make_recon_batch(train["t2"], seed=1)
    denoiser_loss = baselines.build_denoiser(
        paths["denoiser"], kspaces, train["t2"], seconds=math.inf, max_steps=TRAIN_STEPS, seed=0, threads=THREADS
    )
    assert math.isfinite(unet_loss) and math.isfinite(denoiser_loss)
    return paths


# --- phantoms ---------------------------------------------------------------------------------------------------


def test_slice_is_deterministic_for_a_seed_and_differs_across_seeds():
    first = phantom.make_brain_slice(np.random.default_rng(7))
    again = phantom.make_brain_slice(np.random.default_rng(7))
    other = phantom.make_brain_slice(np.random.default_rng(8))
    for key in ("t1", "t2", "lesion_mask", "tissue"):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.allclose(first["t1"], other["t1"])
    assert first["t1"].shape == first["t2"].shape == first["lesion_mask"].shape == (128, 128)
    assert first["t1"].dtype == np.float32 and first["t2"].dtype == np.float32
    assert 0.0 <= first["t1"].min() and first["t1"].max() < 1.5


def test_volume_is_deterministic_and_has_expected_shape():
    first = phantom.make_brain_volume(np.random.default_rng(3), shape=(16, 48, 48))
    again = phantom.make_brain_volume(np.random.default_rng(3), shape=(16, 48, 48))
    other = phantom.make_brain_volume(np.random.default_rng(4), shape=(16, 48, 48))
    np.testing.assert_array_equal(first["t2"], again["t2"])
    assert not np.allclose(first["t2"], other["t2"])
    assert first["t1"].shape == first["lesion_mask"].shape == (16, 48, 48)
    assert first["t1"].dtype == np.float32


def _tissue_means(case, contrast):
    return {
        label: float(case[contrast][case["tissue"] == label].mean())
        for label in (phantom.CSF, phantom.GREY_MATTER, phantom.WHITE_MATTER)
    }


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tissue_contrast_ordering(seed):
    case = phantom.make_brain_slice(np.random.default_rng(seed))
    t1, t2 = _tissue_means(case, "t1"), _tissue_means(case, "t2")
    assert t1[phantom.WHITE_MATTER] > t1[phantom.GREY_MATTER] > t1[phantom.CSF]
    assert t2[phantom.CSF] > t2[phantom.GREY_MATTER] > t2[phantom.WHITE_MATTER]


def test_volume_tissue_contrast_ordering():
    case = phantom.make_brain_volume(np.random.default_rng(0))
    t1, t2 = _tissue_means(case, "t1"), _tissue_means(case, "t2")
    assert t1[phantom.WHITE_MATTER] > t1[phantom.GREY_MATTER] > t1[phantom.CSF]
    assert t2[phantom.CSF] > t2[phantom.GREY_MATTER] > t2[phantom.WHITE_MATTER]


def test_lesions_are_t2_bright_and_t1_dark_against_surrounding_white_matter():
    cases_with_lesions = 0
    for seed in range(12):
        case = phantom.make_brain_slice(np.random.default_rng(seed))
        lesion = case["lesion_mask"].astype(bool)
        if not lesion.any():
            continue
        cases_with_lesions += 1
        assert np.all(case["tissue"][lesion] == phantom.LESION)
        ring = ndimage.binary_dilation(lesion, iterations=4) & ~ndimage.binary_dilation(lesion, iterations=1)
        surrounding_white = ring & (case["tissue"] == phantom.WHITE_MATTER)
        assert surrounding_white.sum() > 5
        assert case["t2"][lesion].mean() > case["t2"][surrounding_white].mean() + 0.15
        assert case["t1"][lesion].mean() < case["t1"][surrounding_white].mean() - 0.1
    assert cases_with_lesions >= 6


def test_background_has_positive_rician_noise():
    case = phantom.make_brain_slice(np.random.default_rng(5))
    # Corners are far from the head, so any signal there is the Rayleigh-distributed noise floor.
    corner = np.concatenate([case["t1"][:12, :12].ravel(), case["t2"][-12:, -12:].ravel()])
    assert np.all(corner > 0.0)
    assert 0.003 < corner.mean() < 0.08
    assert corner.std() > 0.001


def test_undersampling_mask_keeps_a_quarter_of_lines_and_the_centre():
    fractions = []
    for seed in range(20):
        mask = phantom.undersampling_mask((128, 128), acceleration=4, center_fraction=0.08, seed=seed)
        assert mask.shape == (128, 128)
        assert np.all(mask == mask[:1])  # whole phase-encode lines
        columns = mask[0]
        n_center = round(128 * 0.08)
        start = (128 - n_center + 1) // 2
        assert np.all(columns[start : start + n_center] == 1)
        fractions.append(columns.mean())
    assert abs(np.mean(fractions) - 0.25) < 0.02
    assert all(abs(fraction - 0.25) < 0.1 for fraction in fractions)
    np.testing.assert_array_equal(
        phantom.undersampling_mask((64, 64), seed=3), phantom.undersampling_mask((64, 64), seed=3)
    )


def test_zero_filled_of_fully_sampled_kspace_is_the_image():
    image = phantom.make_brain_slice(np.random.default_rng(2))["t2"]
    kspace = phantom.undersample(image, np.ones_like(image))
    assert kspace.shape == (2, 128, 128) and kspace.dtype == np.float32
    np.testing.assert_allclose(phantom.zero_filled(kspace), image, atol=1e-5)


def test_undersampled_zero_filled_image_is_degraded():
    image = phantom.make_brain_slice(np.random.default_rng(2))["t2"]
    kspace = phantom.undersample(image, phantom.undersampling_mask(image.shape, seed=0))
    assert _mae(phantom.zero_filled(kspace), image) > 0.02


# --- baselines --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "in_channels"),
    [
        ("identity", 1),
        ("intensity_remap", 1),
        ("unet", 1),
        ("stochastic_unet", 1),
        ("zero_filled", 2),
        ("denoiser", 2),
    ],
)
@pytest.mark.parametrize(("batch", "size"), [(1, 128), (3, 128), (2, 64)])
def test_baselines_load_and_produce_the_right_shape(models, name, in_channels, batch, size):
    output = _run(models[name], np.random.default_rng(0).random((batch, in_channels, size, size)))
    assert output.shape == (batch, 1, size, size)
    assert output.dtype == np.float32


def test_zero_filled_torchscript_matches_numpy(models):
    images = phantom.make_slice_batch([11, 12])["t1"]
    kspaces, _ = phantom.make_recon_batch(images, seed=4)
    np.testing.assert_allclose(_run(models["zero_filled"], kspaces)[:, 0], phantom.zero_filled(kspaces), atol=1e-5)


def test_synthesis_baselines_rank_unet_over_remap_over_identity(models, held_out):
    inputs, target = held_out["t1"][:, None], held_out["t2"][:, None]
    identity = _mae(_run(models["identity"], inputs), target)
    remap = _mae(_run(models["intensity_remap"], inputs), target)
    unet = _mae(_run(models["unet"], inputs), target)
    assert identity == pytest.approx(_mae(inputs, target))
    assert remap < identity
    assert unet < 0.5 * identity


def test_denoiser_beats_zero_filled(models, held_out):
    kspaces, _ = phantom.make_recon_batch(held_out["t2"], seed=99)
    zero_filled_mae = _mae(phantom.zero_filled(kspaces), held_out["t2"])
    denoiser_mae = _mae(_run(models["denoiser"], kspaces)[:, 0], held_out["t2"])
    assert denoiser_mae < zero_filled_mae


def test_stochastic_unet_varies_between_calls_and_repeats_with_a_seed(models, held_out):
    model = torch.jit.load(str(models["stochastic_unet"]))
    inputs = torch.from_numpy(held_out["t1"][:2, None])
    with torch.no_grad():
        torch.manual_seed(123)
        first = model(inputs)
        second = model(inputs)
        torch.manual_seed(123)
        repeated = model(inputs)
    assert (first - second).abs().mean() > 1e-3
    torch.testing.assert_close(first, repeated)


def test_training_with_a_step_budget_is_reproducible(tmp_path, held_out):
    train = phantom.make_slice_batch(range(6000, 6004))
    outputs = []
    for run in range(2):
        path = tmp_path / f"unet_{run}.pt"
        baselines.build_unet(path, train["t1"], train["t2"], seconds=math.inf, max_steps=3, seed=5, threads=THREADS)
        outputs.append(_run(path, held_out["t1"][:1, None]))
    np.testing.assert_array_equal(outputs[0], outputs[1])
