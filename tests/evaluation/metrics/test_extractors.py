"""Feature extractor registry and the FID Inception-v3 network.

No real weights are needed: a weights file of the standard format is generated from our
network with a fixed seed, and torch-fidelity's own FeatureExtractorInceptionV3 loads the same
file (strict on both sides) and must produce the same 2048-d features.
"""

import dataclasses
import hashlib
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation.metrics import extractors, inception
from evaluation.metrics.extractors import (
    REGISTRY,
    ExtractorUnavailable,
    availability,
    configured_weights_path,
    get_extractor,
)
from evaluation.metrics.inception import FIDInceptionV3, resize_bilinear_tf1
from tests.support.generated_weights import random_fid_inception
from tests.support.reference_libs import torch_fidelity

STANDARD_NAME = "pt_inception-2015-12-05-6726825d.pth"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    model = random_fid_inception()
    path = tmp_path_factory.mktemp("weights") / STANDARD_NAME
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def reference(weights):
    tf = torch_fidelity()
    return tf.FeatureExtractorInceptionV3(
        name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(weights)
    )


@pytest.fixture(scope="module")
def ours(weights):
    return get_extractor("inception_v3", weights_path=weights, verify_sha256=False)


def _reference_features(reference, grey_uint8):
    """torch-fidelity's 2048-d features of (N, H, W) uint8 grey images, replicated to RGB."""
    x = torch.from_numpy(np.repeat(grey_uint8[:, None], 3, axis=1))
    with torch.no_grad():
        return reference(x)[0].double().numpy()


def _ct_and_camera():
    from pydicom import examples
    from skimage import data

    ct = examples.ct.pixel_array.astype(np.float64)  # (128, 128) int16 CT
    return ct, data.camera()  # (512, 512) uint8


def _to_uint8(x, lo, hi):
    return np.rint(np.clip((x - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


# --- the network ----------------------------------------------------------------------


def test_constants_agree():
    assert extractors.INCEPTION_WEIGHTS_FILENAME == inception.WEIGHTS_FILENAME == STANDARD_NAME
    assert extractors.INCEPTION_WEIGHTS_SHA256 == inception.WEIGHTS_SHA256
    assert inception.WEIGHTS_SHA256.startswith("6726825d")  # the hub-style prefix in the file name
    assert extractors.INCEPTION_WEIGHTS_BYTES == inception.WEIGHTS_BYTES
    spec = REGISTRY["inception_v3"]
    assert (spec.weights_filename, spec.weights_sha256, spec.feature_dim) == (
        STANDARD_NAME,
        inception.WEIGHTS_SHA256,
        2048,
    )
    assert spec.input_size == (299, 299) and spec.weights_setting == "MEDGEN_INCEPTION_WEIGHTS"


def test_same_state_dict_keys_and_shapes_as_torch_fidelity(reference):
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    mine = {k: tuple(v.shape) for k, v in FIDInceptionV3().state_dict().items()}
    assert mine == theirs
    assert "fc.weight" in mine and mine["fc.weight"] == (1008, 2048)


@pytest.mark.parametrize("size", [(7, 5), (128, 128), (299, 299), (512, 300), (1, 1)])
def test_resize_is_torch_fidelity_tf1_bilinear(size):
    torch_fidelity()  # first: the package import needs the torchvision stand-in
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1)) * 255
    expected = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    assert torch.equal(resize_bilinear_tf1(x, (299, 299)), expected)


def test_features_equal_torch_fidelity_on_real_images(reference, ours):
    ct, camera = _ct_and_camera()
    lo, hi = float(ct.min()), float(ct.max())
    for image, data_range in ((ct, (lo, hi)), (camera.astype(np.float64), (0, 255))):
        expected = _reference_features(reference, _to_uint8(image, *data_range)[None])
        assert np.abs(expected).max() > 1 and (expected > 0).mean() > 0.2  # the random network is not degenerate
        got = ours.extract(image[None, None], data_range=data_range)
        assert got.shape == (1, 2048) and got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    # The network module itself, on a uint8 RGB batch, as torch-fidelity is called.
    rgb = torch.from_numpy(np.repeat(camera[None, None], 3, axis=1))
    with torch.no_grad():
        direct = ours.model(rgb)
    assert direct.dtype == torch.float64
    np.testing.assert_allclose(direct.numpy(), _reference_features(reference, camera[None]), rtol=1e-5, atol=1e-4)


def test_data_range_clips_and_volumes_average_axial_slices(reference, ours):
    ct, _ = _ct_and_camera()
    lo, hi = 800.0, 1400.0  # a window: values outside are clipped
    slices = np.stack([ct, ct[::-1]])  # (D=2, H, W)
    expected = _reference_features(reference, _to_uint8(slices, lo, hi))  # (2, 2048)
    volume = slices[None, None]  # (N=1, C=1, D=2, H, W)
    got = ours.extract(volume, data_range=(lo, hi))
    assert got.shape == (1, 2048)
    np.testing.assert_allclose(got[0], expected.mean(axis=0), rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_channels_rgb_and_per_channel(ours):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (1, 3, 40, 48))
    rgb = ours.extract(images, data_range=(0, 1))
    assert rgb.shape == (1, 2048)
    two = ours.extract(images[:, :2], data_range=(0, 1))
    assert two.shape == (1, 4096) and len(ours.feature_names) == 4096
    single = ours.extract(images[:, :1], data_range=(0, 1))
    np.testing.assert_array_equal(two[:, :2048], single)


def test_bad_inputs_raise_value_error(ours):
    with pytest.raises(ValueError, match="shape"):
        ours.extract(np.zeros((2, 8, 8)), data_range=(0, 1))
    with pytest.raises(ValueError, match="NaN"):
        ours.extract(np.full((1, 1, 8, 8), np.nan), data_range=(0, 1))
    with pytest.raises(ValueError, match="hi > lo"):
        ours.extract(np.zeros((1, 1, 8, 8)), data_range=(1, 1))


# --- weights: configuration, verification, safe loading ------------------------------


def test_no_weights_configured_names_the_setting():
    with pytest.raises(ExtractorUnavailable, match="MEDGEN_INCEPTION_WEIGHTS") as info:
        get_extractor("inception_v3")
    assert STANDARD_NAME in str(info.value) and "Nothing is downloaded" in str(info.value)
    ok, reason = availability("inception_v3")
    assert not ok and "MEDGEN_INCEPTION_WEIGHTS" in reason


def test_unknown_extractor():
    with pytest.raises(ExtractorUnavailable, match="Unknown feature extractor 'vgg'.*inception_v3"):
        get_extractor("vgg")
    assert availability("vgg")[0] is False


def test_missing_file(tmp_path):
    missing = tmp_path / "nope" / STANDARD_NAME
    with pytest.raises(ExtractorUnavailable, match="not found") as info:
        get_extractor("inception_v3", weights_path=missing)
    assert str(missing) in str(info.value)
    ok, reason = availability("inception_v3", missing)
    assert not ok and "not found" in reason
    ok, reason = availability("inception_v3", tmp_path)
    assert not ok and "not a regular file" in reason


def test_wrong_size_is_reported_without_reading(weights):
    ok, reason = availability("inception_v3", weights)
    assert not ok and "95,628,359 bytes" in reason
    with pytest.raises(ExtractorUnavailable, match="95,628,359 bytes"):
        get_extractor("inception_v3", weights_path=weights)
    ok, reason = availability("inception_v3", weights, verify_sha256=False)
    assert ok and "sha256 is checked when it is loaded" in reason


def test_sha256_mismatch(tmp_path):
    path = tmp_path / STANDARD_NAME
    with open(path, "wb") as f:  # the standard size, wrong content
        f.truncate(inception.WEIGHTS_BYTES)
    assert availability("inception_v3", path)[0] is True  # size only; the hash is checked at load
    with pytest.raises(ExtractorUnavailable, match="sha256") as info:
        get_extractor("inception_v3", weights_path=path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() in str(info.value)
    assert inception.WEIGHTS_SHA256 in str(info.value)


def test_matching_sha256_loads(weights, monkeypatch):
    """With a spec declaring the generated file's hash and size, the verified path loads it."""
    spec = dataclasses.replace(
        REGISTRY["inception_v3"],
        weights_sha256=hashlib.sha256(weights.read_bytes()).hexdigest(),
        weights_bytes=weights.stat().st_size,
    )
    monkeypatch.setitem(REGISTRY._specs, "inception_v3", spec)
    assert availability("inception_v3", weights)[0] is True
    extractor = get_extractor("inception_v3", weights_path=weights)
    assert extractor.spec is spec and not extractor.model.training


def test_legacy_serialisation_loads_with_the_safe_loader(tmp_path):
    """The standard file predates the zip format; the restricted loader reads the legacy format too."""
    full = FIDInceptionV3().state_dict()
    # Files saved before PyTorch 0.4.1 have no BatchNorm step counters; they load all the same.
    state = type(full)((k, v) for k, v in full.items() if not k.endswith("num_batches_tracked"))
    state._metadata = full._metadata
    assert len(state) < len(full)
    path = tmp_path / "legacy.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    extractor = get_extractor("inception_v3", weights_path=path, verify_sha256=False)
    loaded = extractor.model.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


class _Trap:
    """Unpickling this calls _spring (writes a marker file): the safe loader must refuse it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (_spring, (self.marker,))


def _spring(marker):
    Path(marker).write_text("executed")
    return "sprung"


@pytest.mark.parametrize("zip_format", [True, False])
def test_pickled_objects_are_never_executed(tmp_path, zip_format):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth"
    torch.save(
        {"Conv2d_1a_3x3.conv.weight": torch.zeros(1), "payload": _Trap(marker)},
        path,
        _use_new_zipfile_serialization=zip_format,
    )
    with pytest.raises(ExtractorUnavailable, match="safe loader") as info:
        get_extractor("inception_v3", weights_path=path, verify_sha256=False)
    assert not marker.exists()
    assert "weights_only=False" not in str(info.value)  # never advise the unsafe loader to users


def test_plain_pickle_is_refused(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"x": _Trap(marker)}, protocol=2))
    with pytest.raises(ExtractorUnavailable, match="safe loader"):
        get_extractor("inception_v3", weights_path=path, verify_sha256=False)
    assert not marker.exists()


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ExtractorUnavailable, match="not a PyTorch state dict"):
        get_extractor("inception_v3", weights_path=path, verify_sha256=False)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.pth"
    path.touch()
    ok, reason = availability("inception_v3", path)
    assert not ok and "empty" in reason
    with pytest.raises(ExtractorUnavailable, match="empty"):
        get_extractor("inception_v3", weights_path=path, verify_sha256=False)


def test_wrong_keys_and_shapes_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"foo.weight": torch.zeros(3)}, path)
    with pytest.raises(ExtractorUnavailable, match=r"missing \d+ \(.*unexpected 1 \(foo.weight\)"):
        get_extractor("inception_v3", weights_path=path, verify_sha256=False)

    state = FIDInceptionV3().state_dict()
    state["fc.weight"] = torch.zeros(1000, 2048)  # torchvision's 1000-class head instead of 1008
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ExtractorUnavailable, match=r"wrong shape for 1 \(fc.weight\)"):
        get_extractor("inception_v3", weights_path=path, verify_sha256=False)


def test_non_mapping_is_refused(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(ExtractorUnavailable, match="holds a list"):
        get_extractor("inception_v3", weights_path=path, verify_sha256=False)


def test_configured_weights_path():
    settings = type("S", (), {"MEDGEN_INCEPTION_WEIGHTS": "/srv/weights/a.pth"})()
    assert configured_weights_path("inception_v3", settings, environ={}) == "/srv/weights/a.pth"
    assert configured_weights_path("inception_v3", None, {"MEDGEN_INCEPTION_WEIGHTS": "/b.pth"}) == "/b.pth"
    assert configured_weights_path("inception_v3", None, {}) is None
    assert configured_weights_path("radiomics") is None


# --- radiomics ------------------------------------------------------------------------


def _radiomics_or_skip():
    try:
        from evaluation.metrics import radiomics
    except ImportError as exc:
        pytest.skip(f"evaluation/metrics/radiomics.py is not importable yet: {exc}")
    return radiomics


def test_radiomics_through_the_registry():
    radiomics = _radiomics_or_skip()
    assert availability("radiomics") == (True, "Radiomics (IBSI): built in, no weights needed.")
    spec = REGISTRY["radiomics"]
    assert spec.version == f"1.{radiomics.FEATURE_VERSION}" and spec.weights_setting is None
    extractor = get_extractor("radiomics")
    rng = np.random.default_rng(0)
    images = rng.normal(100, 20, (3, 1, 24, 24))
    features = extractor.extract(images, data_range=(0, 200), spacing=0.8)
    expected, names = radiomics.radiomics_features(images[:, 0], spacing=0.8)
    assert features.shape == (3, len(names)) == (3, spec.feature_dim) and features.dtype == np.float64
    np.testing.assert_array_equal(features, expected)
    assert extractor.feature_names == names

    two = extractor.extract(np.concatenate([images, images * 2], axis=1), data_range=(0, 400))
    assert two.shape == (3, 2 * len(names)) and extractor.feature_names[0].startswith("c0_")

    volumes = rng.normal(0, 1, (2, 1, 4, 12, 12))
    vol_features = extractor.extract(volumes, data_range=(-3, 3), spacing=(2.0, 1.0, 1.0))
    np.testing.assert_array_equal(vol_features, radiomics.radiomics_features(volumes[:, 0], (2.0, 1.0, 1.0))[0])


# --- offline ---------------------------------------------------------------------------


def test_no_network_access_in_the_sources():
    for module in (extractors, inception):
        source = Path(module.__file__).read_text()
        for banned in ("torch.hub", "urllib", "http", "requests", "socket", "load_state_dict_from_url"):
            assert banned not in source, f"{banned} in {module.__name__}"
        assert "weights_only=False" not in source
        for line in source.splitlines():  # only ever the restricted loader
            if "torch.load(" in line:
                assert "weights_only=True" in line, line
    assert "weights_only=True" in Path(extractors.__file__).read_text()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_features_equal_cpu_features_without_tf32(weights):
    """On an H100, cuDNN's default TF32 moved the features by 1.4e-3 of their scale; with it off, 1.2e-6."""
    images = np.random.default_rng(0).random((4, 1, 96, 96)).astype(np.float32)
    cpu = get_extractor("inception_v3", weights_path=weights, device="cpu", verify_sha256=False)
    gpu = get_extractor("inception_v3", weights_path=weights, device="cuda", verify_sha256=False)
    on_cpu = cpu.extract(images, data_range=(0.0, 1.0))
    on_gpu = gpu.extract(images, data_range=(0.0, 1.0))
    assert np.abs(on_gpu - on_cpu).max() <= 1e-5 * np.abs(on_cpu).max()
