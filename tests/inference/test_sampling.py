"""The diffusion sampler (`inference.sampling`) around scripted toy noise predictors whose DDIM and DDPM
trajectories are computed here independently, in float64 numpy from the papers' formulas (Song et al. 2021
eq. 12; Ho et al. 2020 eqs. 6–7, 15), not with MONAI."""

import io

import numpy as np
import pytest
import torch

from inference import runner, sampling
from inference.sampling import Sampling, SchedulerSpec

torch.set_num_threads(1)

H = W = 8


class Linear(torch.nn.Module):
    """ε(x_t, t) = a·x_t + b·condition + c·t/1000: linear, so its trajectory is computable by hand."""

    def __init__(self, a=0.3, b=-0.2, c=0.1):
        super().__init__()
        self.a, self.b, self.c = a, b, c

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        scale = (t.to(x.dtype) / 1000.0).reshape(-1, 1, 1, 1)
        return self.a * x[:, 0:1] + self.b * x[:, 1:2] + self.c * scale


class NaNAfter(torch.nn.Module):
    """ε = 0 while t ≥ limit, NaN below it."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros_like(x[:, 0:1])
        if int(t[0]) < self.limit:
            return zero + float("nan")
        return zero


def scripted(module):
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buffer)
    return runner.TorchScriptModel(buffer.getvalue(), "cpu")  # through the operation checks


def alphas_cumprod(spec):
    """β_t and ᾱ_t = Π(1 − β) as the schedule is stored, in float32 (at t = 0, 1 − ᾱ_0 = β_0 = 1e-4 is
    only good to ~1e-3 in float32, which a float64 schedule would show as a difference); the rest is float64."""
    betas = np.linspace(spec.beta_start, spec.beta_end, spec.num_train_timesteps, dtype=np.float32)
    abar = np.cumprod(np.float32(1) - betas, dtype=np.float32)
    return betas.astype(np.float64), abar.astype(np.float64), (np.float32(1) - abar).astype(np.float64)


def x_T(seed, shape=(1, H, W)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).double().numpy()


def eps_of(x, cond, t, a=0.3, b=-0.2, c=0.1):
    return a * x + b * cond + c * t / 1000.0


def ddim_reference(spec, steps, cond, seed):
    _, abar, one_minus = alphas_cumprod(spec)
    ratio = spec.num_train_timesteps // steps
    x = x_T(seed)
    for t in (np.arange(steps) * ratio)[::-1]:
        prev = t - ratio
        a_t, a_prev = abar[t], (abar[prev] if prev >= 0 else 1.0)
        eps = eps_of(x, cond, t)
        x0 = (x - np.sqrt(one_minus[t]) * eps) / np.sqrt(a_t)
        if spec.clip_sample:
            x0 = np.clip(x0, spec.clip_min, spec.clip_max)
        x = np.sqrt(a_prev) * x0 + np.sqrt(one_minus[prev] if prev >= 0 else 0.0) * eps
    return x


def ddpm_reference(spec, cond, seed):
    betas, abar, one_minus = alphas_cumprod(spec)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((1, H, W), generator=generator).double().numpy()
    for t in range(spec.num_train_timesteps - 1, -1, -1):
        a_prev, b_prev = (abar[t - 1], one_minus[t - 1]) if t > 0 else (1.0, 0.0)
        eps = eps_of(x, cond, t)
        x0 = (x - np.sqrt(one_minus[t]) * eps) / np.sqrt(abar[t])
        mean = np.sqrt(a_prev) * betas[t] / one_minus[t] * x0 + np.sqrt(1 - betas[t]) * b_prev / one_minus[t] * x
        if t > 0:
            sigma = np.sqrt(max(b_prev / one_minus[t] * betas[t], 1e-20))
            mean = mean + sigma * torch.randn((1, 1, H, W), generator=generator).double().numpy()[0]
        x = mean
    return x


@pytest.fixture(scope="module")
def linear():
    return scripted(Linear())


def condition(n=1, seed=5):
    return np.random.default_rng(seed).random((n, 1, H, W), dtype=np.float32)


@pytest.mark.parametrize("steps", [1, 4, 10, 20])
def test_ddim_trajectory_is_the_papers(linear, steps):
    spec = SchedulerSpec(kind="ddim", num_train_timesteps=20, clip_sample=False)
    cond = condition()
    out = sampling.sample_batch(linear.predict_noise, cond, Sampling(spec, "ddim", steps), [7])
    expected = ddim_reference(spec, steps, cond[0].astype(np.float64), 7)
    assert out.shape == (1, 1, H, W) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], expected, rtol=1e-4, atol=1e-4)


def test_ddim_with_clipping(linear):
    spec = SchedulerSpec(kind="ddim", num_train_timesteps=20, clip_sample=True, clip_min=-0.5, clip_max=0.5)
    cond = condition()
    out = sampling.sample_batch(linear.predict_noise, cond, Sampling(spec, "ddim", 5), [3])
    np.testing.assert_allclose(out[0], ddim_reference(spec, 5, cond[0].astype(np.float64), 3), rtol=1e-4, atol=1e-4)


def test_ddpm_trajectory_is_the_papers(linear):
    spec = SchedulerSpec(kind="ddpm", num_train_timesteps=12, clip_sample=False)
    cond = condition()
    out = sampling.sample_batch(linear.predict_noise, cond, Sampling(spec, "ddpm", 12), [11])
    np.testing.assert_allclose(out[0], ddpm_reference(spec, cond[0].astype(np.float64), 11), rtol=1e-4, atol=1e-4)


def test_steps_change_the_result_and_seeds_are_honoured(linear):
    spec = SchedulerSpec(kind="ddim", num_train_timesteps=20, clip_sample=False)
    cond = condition(n=2)
    five = sampling.sample_batch(linear.predict_noise, cond, Sampling(spec, "ddim", 5), [1, 2])
    again = sampling.sample_batch(linear.predict_noise, cond, Sampling(spec, "ddim", 5), [1, 2])
    ten = sampling.sample_batch(linear.predict_noise, cond, Sampling(spec, "ddim", 10), [1, 2])
    np.testing.assert_array_equal(five, again)
    assert np.abs(five - ten).max() > 1e-3
    assert np.abs(five[0] - five[1]).max() > 1e-2  # two seeds, two samples
    # An item's sample does not depend on its batch: item 1 alone with seed 2 is the same.
    alone = sampling.sample_batch(linear.predict_noise, cond[1:], Sampling(spec, "ddim", 5), [2])
    np.testing.assert_allclose(alone[0], five[1], atol=1e-6)


def test_sampler_seeds_items_consecutively(linear):
    spec = SchedulerSpec(kind="ddim", num_train_timesteps=20, clip_sample=False)
    sampler = sampling.Sampler(linear, Sampling(spec, "ddim", 4))
    cond = condition(n=3)
    out = sampler.predict(cond, seed=40)
    for j in range(3):
        np.testing.assert_allclose(out[j], ddim_reference(spec, 4, cond[j, 0].astype(np.float64), 40 + j), atol=1e-4)


def test_nan_names_the_step():
    spec = SchedulerSpec(kind="ddim", num_train_timesteps=100, clip_sample=False)
    model = scripted(NaNAfter(50))  # timesteps 90, 80, …: step 5 is t=50, step 6 t=40
    with pytest.raises(sampling.NonFiniteStep, match=r"NaN or Inf at sampling step 6 of 10 \(t=40\)"):
        sampling.sample_batch(model.predict_noise, condition(), Sampling(spec, "ddim", 10), [0])


def test_wrong_output_shape_is_refused():
    class TwoChannels(torch.nn.Module):
        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return x

    spec = SchedulerSpec(kind="ddim", num_train_timesteps=10)
    with pytest.raises(runner.ModelArtifactError, match=r"returned shape \(1, 2, 8, 8\) at sampling step 1 of 2"):
        sampling.sample_batch(scripted(TwoChannels()).predict_noise, condition(), Sampling(spec, "ddim", 2), [0])


def test_scheduler_spec_is_checked():
    spec = SchedulerSpec.from_dict({"kind": "ddim", "num_train_timesteps": 1000, "schedule": "scaled_linear_beta"})
    assert spec.default_steps() == 50 and spec.default_steps("ddpm") == 1000
    for bad, message in [
        ({"kind": "euler", "num_train_timesteps": 10}, "not one of ddpm, ddim"),
        ({"kind": "ddim"}, "num_train_timesteps"),
        ({"kind": "ddim", "num_train_timesteps": 0}, "whole number"),
        ({"kind": "ddim", "num_train_timesteps": 10, "schedule": "quadratic"}, "β schedule"),
        ({"kind": "ddim", "num_train_timesteps": 10, "beta_start": 0.5, "beta_end": 0.1}, "beta_start < beta_end"),
        ({"kind": "ddim", "num_train_timesteps": 10, "eta": 1}, "Unknown scheduler field"),
        ([1, 2], "as an object"),
    ]:
        with pytest.raises(ValueError, match=message):
            SchedulerSpec.from_dict(bad)
    spec.check_steps(25, "ddim")
    with pytest.raises(ValueError, match="DDPM samples all 1000"):
        spec.check_steps(25, "ddpm")
    with pytest.raises(ValueError, match="from 1 to 1000"):
        spec.check_steps(1001, "ddim")


# --------------------------------------------------------------------------- reconstruction


def phantom_kspace(seed=0, size=16):
    """A real image, its centred k-space with random columns kept (as the demo stores reconstruction inputs)."""
    rng = np.random.default_rng(seed)
    image = rng.random((size, size))
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image), norm="ortho"))
    columns = rng.random(size) < 0.3
    columns[size // 2 - 1 : size // 2 + 1] = True
    mask = np.broadcast_to(columns, (size, size))
    measured = kspace * mask
    return image, np.stack([measured.real, measured.imag])[None].astype(np.float32), mask


def test_data_consistency_keeps_the_measured_lines():
    _, kspace2ch, mask = phantom_kspace()
    measured, found = sampling.measured_kspace(torch.from_numpy(kspace2ch))
    assert np.array_equal(found.numpy()[0, 0], mask)
    estimate = torch.from_numpy(np.random.default_rng(3).standard_normal((1, 1, 16, 16)))
    consistent = sampling.data_consistency(estimate, measured, found)
    back = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(consistent.numpy()[0, 0]), norm="ortho"))
    target = kspace2ch[0, 0] + 1j * kspace2ch[0, 1]
    np.testing.assert_allclose(back[mask], target[mask], atol=1e-6)
    # Elsewhere the estimate's own k-space is kept.
    own = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(estimate.numpy()[0, 0]), norm="ortho"))
    np.testing.assert_allclose(back[~mask], own[~mask], atol=1e-9)


def test_zero_filled_condition_matches_the_numpy_one():
    _, kspace2ch, _ = phantom_kspace(seed=4)
    expected = np.abs(
        np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace2ch[0, 0] + 1j * kspace2ch[0, 1]), norm="ortho"))
    )
    np.testing.assert_allclose(sampling.zero_filled(torch.from_numpy(kspace2ch))[0, 0].numpy(), expected, atol=1e-6)


class OracleNoise(torch.nn.Module):
    """The exact ε for a fixed clean image x0 (given as a constant): ε = (x_t − √ᾱ_t·x0) / √(1 − ᾱ_t)."""

    def __init__(self, x0: torch.Tensor, abar: torch.Tensor):
        super().__init__()
        self.x0 = x0
        self.abar = abar

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.abar[t].reshape(-1, 1, 1, 1)
        return (x[:, 0:1] - a.sqrt() * self.x0) / (1 - a).sqrt()


def test_reconstruction_sampler_is_data_consistent_and_conditions_on_zero_filled():
    image, kspace2ch, mask = phantom_kspace(seed=1)
    spec = SchedulerSpec(kind="ddim", num_train_timesteps=50, clip_sample=False)
    abar = torch.cumprod(1 - torch.linspace(spec.beta_start, spec.beta_end, 50), 0)
    # An oracle predictor for a wrong image: data consistency still puts the measured lines back.
    wrong = torch.zeros((1, 1, 16, 16))
    seen = []

    def predict(x, t):
        seen.append(x[:, 1:2].clone())
        return OracleNoise(wrong, abar)(x, t)

    out = sampling.sample_batch(predict, kspace2ch, Sampling(spec, "ddim", 5, reconstruction=True), [0])
    np.testing.assert_allclose(seen[0].numpy(), sampling.zero_filled(torch.from_numpy(kspace2ch)).numpy())
    back = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(out[0, 0].astype(np.float64)), norm="ortho"))
    target = kspace2ch[0, 0] + 1j * kspace2ch[0, 1]
    # The real part of a data-consistent image: its k-space keeps the Hermitian part of the measurements,
    # exactly where the mirrored location was measured too (here the centre columns).
    both = mask & np.roll(mask[::-1, ::-1], 1, axis=(0, 1))
    np.testing.assert_allclose(back[both], target[both], atol=1e-5)
    # And it is much closer to the true image than the zero image the predictor believes in.
    assert np.abs(out[0, 0] - image).mean() < 0.5 * np.abs(image).mean()


def onnx_linear(path):
    """The `Linear` predictor as an ONNX graph with inputs x (N, 2, H, W) float32 and t (N,) int64."""
    import onnx
    from onnx import TensorProto, helper

    def const(name, values, dtype=TensorProto.FLOAT, dims=None):
        return helper.make_tensor(name, dtype, dims if dims is not None else [len(values)], values)

    nodes = [
        helper.make_node("Split", ["x", "halves"], ["xt", "cond"], axis=1),
        helper.make_node("Mul", ["xt", "a"], ["ax"]),
        helper.make_node("Mul", ["cond", "b"], ["bc"]),
        helper.make_node("Cast", ["t"], ["tf"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["tf", "thousand"], ["ts"]),
        helper.make_node("Mul", ["ts", "c"], ["ct"]),
        helper.make_node("Reshape", ["ct", "column"], ["ct4"]),
        helper.make_node("Add", ["ax", "bc"], ["sum"]),
        helper.make_node("Add", ["sum", "ct4"], ["eps"]),
    ]
    initializers = [
        const("halves", [1, 1], TensorProto.INT64),
        const("a", [0.3]), const("b", [-0.2]), const("c", [0.1]), const("thousand", [1000.0]),
        const("column", [-1, 1, 1, 1], TensorProto.INT64),
    ]  # fmt: skip
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, None, None]),
        helper.make_tensor_value_info("t", TensorProto.INT64, ["N"]),
    ]
    outputs = [helper.make_tensor_value_info("eps", TensorProto.FLOAT, ["N", 1, None, None])]
    model = helper.make_model(
        helper.make_graph(nodes, "linear", inputs, outputs, initializer=initializers),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_an_onnx_noise_predictor_samples_the_same_trajectory(tmp_path):
    model = runner.OnnxModel(onnx_linear(tmp_path / "linear.onnx"), "cpu")
    spec = SchedulerSpec(kind="ddim", num_train_timesteps=20, clip_sample=False)
    cond = condition(n=2)
    out = sampling.sample_batch(model.predict_noise, cond, Sampling(spec, "ddim", 5), [8, 9])
    for j, seed in enumerate([8, 9]):
        np.testing.assert_allclose(out[j], ddim_reference(spec, 5, cond[j, 0].astype(np.float64), seed), atol=1e-4)
