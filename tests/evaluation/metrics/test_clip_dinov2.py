"""CLIP ViT-B/32 and DINOv2 ViT-B/14 extractors and their metrics against the reference code.

No real weights are needed: weights files of the standard formats are generated (OpenAI's CLIP traced
to TorchScript with fp16 tensors, as ViT-B-32.pt is; DINOv2's state dict saved with torch.save) from
the vendored reference models with narrower widths, and the reference models (tests/support/refs:
openai/CLIP model.py, facebookresearch/dinov2) load the same files as their own loaders do.
"""

import hashlib
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.metrics import catalog, clip, clip_metrics, dinov2, embedding, extractors
from evaluation.metrics.extractors import REGISTRY, ExtractorUnavailable, availability, get_extractor
from tests.support.generated_weights import random_dinov2, random_openai_clip, save_openai_clip_torchscript
from tests.support.reference_libs import _ensure_torchvision, pytorch_fid_score
from tests.support.refs import cmmd_distance, openai_clip_model

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "ViT-B-32.pt"
    return save_openai_clip_torchscript(random_openai_clip(), path)


@pytest.fixture(scope="module")
def clip_reference(clip_file):
    """openai/CLIP's clip.load(path, device="cpu", jit=False) model: build_model(jit state dict).float()."""
    with open(clip_file, "rb") as handle:
        state = torch.jit.load(handle, map_location="cpu").eval().state_dict()
    return openai_clip_model.build_model(state).float().eval()


@pytest.fixture(scope="module")
def clip_ours(clip_file):
    return get_extractor("clip", weights_path=clip_file, verify_sha256=False)


@pytest.fixture(scope="module")
def dino_file(tmp_path_factory):
    model = random_dinov2()
    path = tmp_path_factory.mktemp("dino") / "dinov2_vitb14_pretrain.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def dino_reference(dino_file):
    model = random_dinov2(seed=99)  # other weights, replaced by the file's as torch.hub does (strict)
    model.load_state_dict(torch.load(dino_file, map_location="cpu"), strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def dino_ours(dino_file):
    return get_extractor("dinov2", weights_path=dino_file, verify_sha256=False)


def _clip_transform(image_uint8, n_px=224):
    """openai/CLIP's _transform(n_px) on a PIL image, written with PIL (torchvision does not load here):
    Resize(n_px, BICUBIC) → PIL resize with torchvision's size rule; CenterCrop; RGB; ToTensor; Normalize."""
    im = Image.fromarray(image_uint8).convert("RGB")
    w, h = im.size
    if w <= h:
        size = (n_px, int(n_px * h / w))
    else:
        size = (int(n_px * w / h), n_px)
    im = im.resize(size, Image.BICUBIC)
    w, h = im.size
    left, top = int(round((w - n_px) / 2.0)), int(round((h - n_px) / 2.0))
    im = im.crop((left, top, left + n_px, top + n_px))
    x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255
    return (x - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]


def _dgm_eval_dinov2_transform(image_uint8):
    """dgm-eval's DINOv2Encoder.transform (clean_resize=False): Resize((224, 224), BICUBIC), ToTensor, Normalize."""
    im = Image.fromarray(image_uint8).convert("RGB").resize((224, 224), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    return (x - mean[:, None, None]) / std[:, None, None]


def _to_uint8(x, lo, hi):
    return np.rint(np.clip((x - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def _real_images():
    from pydicom import examples
    from skimage import data

    ct = examples.ct.pixel_array.astype(np.float64)  # (128, 128) CT
    mr = examples.mr.pixel_array.astype(np.float64)  # (64, 64) MR
    return [(ct, (float(ct.min()), float(ct.max()))), (mr, (0.0, float(mr.max()))), (data.camera()[:, 50:], (0, 255))]


# --- weights declarations --------------------------------------------------------------


def test_declared_weights_are_the_references_pins():
    spec = REGISTRY["clip"]
    assert spec.weights_filename == clip.WEIGHTS_FILENAME == "ViT-B-32.pt"
    # openai/CLIP clip.py: _MODELS["ViT-B/32"] = ".../clip/models/<sha256>/ViT-B-32.pt"
    assert spec.weights_sha256 == clip.WEIGHTS_SHA256 == extractors.CLIP_WEIGHTS_SHA256
    assert spec.weights_sha256 == "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"
    assert spec.weights_setting == "MEDGEN_CLIP_WEIGHTS" and spec.feature_dim == 512
    dino = REGISTRY["dinov2"]
    assert dino.weights_filename == dinov2.WEIGHTS_FILENAME == "dinov2_vitb14_pretrain.pth"
    assert dino.weights_sha256 is None and dino.weights_sha256_setting == "MEDGEN_DINOV2_WEIGHTS_SHA256"
    assert dino.weights_setting == "MEDGEN_DINOV2_WEIGHTS" and dino.feature_dim == 768


def test_full_size_models_have_the_reference_keys_and_shapes():
    """ViT-B/32 below `visual.` and ViT-B/14 as torch.hub builds them, on the meta device (no memory)."""
    with torch.device("meta"):
        reference = openai_clip_model.CLIP(512, 224, 12, 768, 32, 77, 49408, 512, 8, 12)
        ours = clip.CLIPVisionTransformer()
        dino_reference = random_dinov2(dim=768, depth=12, heads=12)
        dino_ours = dinov2.DinoVisionTransformer()
    theirs = {
        k.removeprefix("visual."): tuple(v.shape) for k, v in reference.state_dict().items() if k[:7] == "visual."
    }
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == theirs
    assert theirs["proj"] == (768, 512) and theirs["positional_embedding"] == (50, 768)
    assert clip.CLIPVisionTransformer.config_from_state_dict(theirs_meta := reference.state_dict())["heads"] == 12
    assert len(theirs_meta) > len(theirs)
    dino_theirs = {k: tuple(v.shape) for k, v in dino_reference.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in dino_ours.state_dict().items()} == dino_theirs
    assert dino_theirs["pos_embed"] == (1, 37 * 37 + 1, 768)


# --- CLIP -------------------------------------------------------------------------------------


def test_torchscript_reader_returns_the_archive_state_dict(clip_file):
    ours = clip.read_torchscript_tensors(clip_file.read_bytes())
    theirs = torch.jit.load(str(clip_file), map_location="cpu").state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) and ours[k].dtype == theirs[k].dtype for k in theirs)
    assert ours["visual.conv1.weight"].dtype == torch.float16  # fp16, as OpenAI ships the file


def test_clip_embeddings_equal_openai_clip(clip_reference, clip_ours):
    for image, data_range in _real_images():
        pixels = _to_uint8(image, *data_range)
        with torch.no_grad():
            expected = clip_reference.encode_image(_clip_transform(pixels)[None]).double().numpy()
        assert np.abs(expected).max() > 0.1  # the random network is not degenerate
        got = clip_ours.extract(image[None, None], data_range=data_range)
        assert got.shape == (1, clip_reference.visual.output_dim) and got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_clip_preprocess_equals_the_clip_transform():
    rng = np.random.default_rng(0)
    for shape in ((100, 130), (300, 224), (224, 224), (57, 500)):
        pixels = rng.integers(0, 256, (1, *shape), dtype=np.uint8)
        np.testing.assert_array_equal(clip.preprocess(pixels)[0].numpy(), _clip_transform(pixels[0]).numpy())
    assert clip.resized_size(100, 130) == (224, 291) and clip.resized_size(300, 224) == (300, 224)


def test_clip_volumes_average_their_slices(clip_reference, clip_ours):
    ct, (lo, hi) = _real_images()[0]
    slices = np.stack([ct, ct[::-1], ct.T])
    with torch.no_grad():
        batch = torch.stack([_clip_transform(_to_uint8(s, lo, hi)) for s in slices])
        expected = clip_reference.encode_image(batch).double().numpy().mean(axis=0)
    got = clip_ours.extract(slices[None, None], data_range=(lo, hi))
    np.testing.assert_allclose(got[0], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_clip_similarity_equals_torchmetrics_clip_score(clip_reference, clip_ours):
    """torchmetrics' own _clip_score_update with image source and target, our model behind its interface."""
    _ensure_torchvision()
    from torchmetrics.functional.multimodal.clip_score import _clip_score_update

    images = [img for img, _ in _real_images()[:2]]
    outputs = [img + np.random.default_rng(i).normal(0, 0.05 * img.std(), img.shape) for i, img in enumerate(images)]
    lo, hi = 0.0, float(max(i.max() for i in images))

    class Processor:
        def __call__(self, images, return_tensors, padding):
            return {"pixel_values": torch.stack([_clip_transform(x[0].numpy()) for x in images])}

    class Model(torch.nn.Module):
        def get_image_features(self, pixel_values):
            return clip_reference.encode_image(pixel_values)

    as_tensors = [
        [torch.from_numpy(_to_uint8(x, lo, hi))[None] for x in side] for side in (outputs, images)
    ]  # (C, H, W)
    with torch.no_grad():
        score, n = _clip_score_update(*as_tensors, Model(), Processor())
    expected = float(torch.clamp(score.mean(0), min=0))  # clip_score: mean, then max(·, 0)
    gen = np.concatenate([clip_ours.extract(o[None, None], data_range=(lo, hi)) for o in outputs])
    ref = np.concatenate([clip_ours.extract(i[None, None], data_range=(lo, hi)) for i in images])
    value, extra = catalog.get("clip_similarity").compute(gen, ref)
    assert n == 2 and extra == {"pairs": 2}
    assert value == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(clip_metrics.cosine_similarity_score(gen, ref), score.double().numpy(), rtol=1e-5)
    assert clip_metrics.clip_score(-gen, ref) == 0.0  # anti-aligned: clamped at 0 as torchmetrics does


def test_cmmd_equals_google_research_cmmd():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (40, 48))
    y = rng.normal(0.3, 1.2, (55, 48))
    # cmmd's embeddings are scenic's encode_image(normalize=True): unit rows.
    expected = cmmd_distance.mmd(x / np.linalg.norm(x, axis=1, keepdims=True), y / np.linalg.norm(y, axis=1)[:, None])
    value, extra = catalog.get("cmmd").compute(x, y)
    assert value == pytest.approx(float(expected), rel=1e-12) and value > 0
    assert extra == {"sigma": 10.0, "scale": 1000.0}
    assert clip_metrics.cmmd(x, x) == pytest.approx(0.0, abs=1e-12)
    # In cmmd's float32 (jax's default) the value agrees to float32 rounding.
    f32 = cmmd_distance.mmd(clip_metrics.unit_rows(x), clip_metrics.unit_rows(y), dtype=np.float32)
    assert value == pytest.approx(float(f32), rel=1e-3)


@pytest.mark.parametrize("key", ["fd_clip", "fd_dinov2"])
def test_frechet_on_embeddings_equals_pytorch_fid(key):
    fid = pytorch_fid_score()
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, (80, 24)), rng.normal(0.2, 1.1, (90, 24))
    expected = fid.calculate_frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    value, _ = catalog.get(key).compute(x, y)
    assert value == pytest.approx(float(expected), rel=1e-9)
    assert catalog.FRECHET_BY_EXTRACTOR[{"fd_clip": "clip", "fd_dinov2": "dinov2"}[key]] == key


# --- DINOv2 -----------------------------------------------------------------------------------


def test_dinov2_features_equal_the_reference_model(dino_reference, dino_ours):
    for image, data_range in _real_images():
        pixels = _to_uint8(image, *data_range)
        with torch.no_grad():
            expected = dino_reference(_dgm_eval_dinov2_transform(pixels)[None]).double().numpy()
        assert np.abs(expected).max() > 0.1
        got = dino_ours.extract(image[None, None], data_range=data_range)
        assert got.shape == (1, 128) and got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_dinov2_same_keys_as_the_reference(dino_reference, dino_ours):
    theirs = {k: tuple(v.shape) for k, v in dino_reference.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in dino_ours.model.state_dict().items()} == theirs
    assert "blocks.1.ls2.gamma" in theirs and "mask_token" in theirs


def test_channels_rgb_and_per_channel(dino_ours):
    images = np.random.default_rng(0).uniform(0, 1, (2, 3, 40, 48))
    assert dino_ours.extract(images, data_range=(0, 1)).shape == (2, 128)
    two = dino_ours.extract(images[:, :2], data_range=(0, 1))
    assert two.shape == (2, 256) and dino_ours.feature_names[0] == "c0_dinov2_0"
    np.testing.assert_array_equal(two[:, :128], dino_ours.extract(images[:, :1], data_range=(0, 1)))


# --- availability, pins, refusals ---------------------------------------------------------------


def test_no_weights_names_the_setting():
    for name, setting in (("clip", "MEDGEN_CLIP_WEIGHTS"), ("dinov2", "MEDGEN_DINOV2_WEIGHTS")):
        ok, reason = availability(name)
        assert not ok and setting in reason and "Nothing is downloaded" in reason
        with pytest.raises(ExtractorUnavailable, match=setting):
            get_extractor(name)


def test_dinov2_needs_a_pinned_sha256(dino_file):
    ok, reason = availability("dinov2", dino_file)
    assert not ok and "MEDGEN_DINOV2_WEIGHTS_SHA256" in reason and "publishes no sha256" in reason
    with pytest.raises(ExtractorUnavailable, match="MEDGEN_DINOV2_WEIGHTS_SHA256"):
        get_extractor("dinov2", weights_path=dino_file)
    digest = hashlib.sha256(dino_file.read_bytes()).hexdigest()
    assert availability("dinov2", dino_file, weights_sha256=digest)[0] is True
    assert not get_extractor("dinov2", weights_path=dino_file, weights_sha256=digest).model.training
    with pytest.raises(ExtractorUnavailable, match="wrong or damaged"):
        get_extractor("dinov2", weights_path=dino_file, weights_sha256="0" * 64)
    env = {"MEDGEN_DINOV2_WEIGHTS_SHA256": digest.upper() + " "}
    assert extractors.configured_weights_sha256("dinov2", None, env) == digest
    assert extractors.configured_weights_sha256("clip", None, env) is None


def test_clip_sha256_is_checked_before_reading(clip_file, monkeypatch):
    with pytest.raises(ExtractorUnavailable, match="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"):
        get_extractor("clip", weights_path=clip_file)

    def refuse(data):
        raise AssertionError("parsed before the sha256 check")

    monkeypatch.setattr(clip, "read_torchscript_tensors", refuse)
    with pytest.raises(ExtractorUnavailable, match="wrong or damaged"):
        get_extractor("clip", weights_path=clip_file)


class _Trap:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "executed"))


def _archive(data_pkl):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("m/data.pkl", data_pkl)
        archive.writestr("m/constants.pkl", pickle.dumps(()))
    return buffer.getvalue()


def test_torchscript_reader_never_runs_globals(tmp_path):
    marker = tmp_path / "marker"
    with pytest.raises(clip.TorchScriptArchiveError, match="does not load"):
        clip.read_torchscript_tensors(_archive(pickle.dumps({"x": _Trap(marker)}, protocol=2)))
    assert not marker.exists()
    with pytest.raises(clip.TorchScriptArchiveError, match="not a zip"):
        clip.read_torchscript_tensors(b"not a zip")
    with pytest.raises(clip.TorchScriptArchiveError, match="data.pkl"):
        clip.read_torchscript_tensors(_archive(b"garbage"))
    path = tmp_path / "evil.pt"
    path.write_bytes(_archive(pickle.dumps(_Trap(marker), protocol=2)))
    with pytest.raises(ExtractorUnavailable, match="not OpenAI's TorchScript CLIP archive"):
        get_extractor("clip", weights_path=path, verify_sha256=False)
    assert not marker.exists()


def test_a_plain_state_dict_is_not_taken_for_the_clip_archive(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(random_openai_clip().state_dict(), path)
    with pytest.raises(ExtractorUnavailable, match="not OpenAI's TorchScript CLIP archive"):
        get_extractor("clip", weights_path=path, verify_sha256=False)


def test_no_network_and_no_archive_execution_in_the_sources():
    for module in (clip, dinov2, embedding, clip_metrics):
        source = Path(module.__file__).read_text()
        for banned in ("torch.hub", "urllib", "http", "requests", "socket", "jit.load(", "weights_only=False"):
            assert banned not in source, f"{banned} in {module.__name__}"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_features_equal_cpu_features_without_tf32(clip_file, dino_file):
    images = np.random.default_rng(0).random((3, 1, 96, 120)).astype(np.float32)
    for name, path in (("clip", clip_file), ("dinov2", dino_file)):
        cpu = get_extractor(name, weights_path=path, device="cpu", verify_sha256=False).extract(
            images, data_range=(0, 1)
        )
        gpu = get_extractor(name, weights_path=path, device="cuda", verify_sha256=False).extract(
            images, data_range=(0, 1)
        )
        assert np.abs(gpu - cpu).max() <= 1e-4 * np.abs(cpu).max(), name
