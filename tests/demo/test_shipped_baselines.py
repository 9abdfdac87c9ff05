"""The demo's shipped baselines (demo/artifacts/, written by scripts/train_baselines.py): each file is the one
its manifest names (sha256), each goes through the normal upload and validation path, the manifest's held-out
figures are what the files give, and the training is deterministic on CPU with a fixed seed."""

import math

import numpy as np
import pytest
import torch

from demo import generative, shipped
from inference import runner, sampling
from inference.models import Case, CaseOutput, ImageRole, ModelStatus, Run, TaskKind
from inference.services import artifacts, runs
from tests.support.factories import TaskFactory, add_image, make_task
from tests.support.jobs import run_job, validate

MANIFEST = shipped.load_manifest()
MODELS = MANIFEST["models"]
GENERATIVE_KEYS = sorted(shipped.GENERATIVE)


def test_the_manifest_lists_every_baseline_with_its_settings():
    assert set(GENERATIVE_KEYS) <= set(MODELS)
    assert {MODELS[key]["family"] for key in GENERATIVE_KEYS} == {"gan", "vae", "diffusion"}
    for key in GENERATIVE_KEYS:
        entry = MODELS[key]
        # The settings the script trains with now, seed included: the files are what this code makes.
        assert entry["training"] == {**shipped.GENERATIVE[key][4].as_dict(), "seed": MANIFEST["seed"]}
        assert entry["wall_seconds"] > 0
        assert ("scheduler" in entry) == (entry["family"] == "diffusion")
    # Training phantoms never meet the demo's test cases (seeds 1000+) nor the held-out check.
    train, heldout = range(*MANIFEST["train_seeds"]), range(*MANIFEST["heldout_seeds"])
    assert not set(train) & set(heldout) and min(train) > 100_000 and min(heldout) > 100_000


@pytest.mark.parametrize("key", sorted(MODELS))
def test_each_file_is_the_one_its_manifest_names_and_small(key):
    entry = MODELS[key]
    path = shipped.ARTIFACT_DIR / entry["file"]
    assert shipped.sha256_of(path) == entry["sha256"]
    assert path.stat().st_size == entry["size_bytes"] < 5 * 2**20


@pytest.mark.django_db
def test_every_shipped_artifact_registers_and_validates_like_an_upload():
    tasks = {
        shipped.TRANSLATION: make_task(n_cases=1, shape=(1, 128, 128), kind=TaskKind.TRANSLATION),
        shipped.RECONSTRUCTION: make_task(n_cases=1, shape=(2, 128, 128), kind=TaskKind.RECONSTRUCTION),
    }
    for key, entry in MODELS.items():
        model = artifacts.register_model(
            shipped.ARTIFACT_DIR / entry["file"],
            name=entry["name"],
            task=tasks[entry["task"]],
            in_channels=entry["in_channels"],
            out_channels=entry["out_channels"],
            spatial_shape=[128, 128],
            family=entry["family"],
            scheduler=entry.get("scheduler"),
            stochastic=entry.get("stochastic", False),
            samples_per_case=entry.get("samples_per_case", 1),
        )
        assert model.sha256 == entry["sha256"]
        assert validate(model) == ModelStatus.VALID, (key, model.validation_error)


@pytest.mark.parametrize("key", ["pix2pix", "cyclegan", "cvae", "gan_recon", "unet", "denoiser"])
def test_the_manifest_held_out_figures_are_what_the_files_give(key):
    entry = MODELS[key]
    measured = shipped.measure(shipped.ARTIFACT_DIR / entry["file"], entry["task"], None, shipped.heldout_cases())
    assert measured == pytest.approx(entry["heldout"], abs=1e-3)
    assert 0 < measured["ssim"] < 1 and math.isfinite(measured["psnr"])


@pytest.mark.parametrize("key", sorted(MODELS))
def test_no_shipped_graph_holds_a_device_constant(key):
    """A trace records ``torch.arange(device=t.device)`` as the CPU it was traced on: such a file failed on an H200
    worker ("found at least two devices, cuda:0 and cpu"). Every device in a shipped graph comes from its inputs."""
    graph = str(torch.jit.load(str(shipped.ARTIFACT_DIR / MODELS[key]["file"])).inlined_graph)
    constants = [line.strip() for line in graph.splitlines() if "Device = prim::Constant" in line]
    assert constants == []


def test_the_device_free_timestep_embedding_is_monais():
    from monai.networks.nets.diffusion_model_unet import get_timestep_embedding

    timesteps = torch.tensor([0, 1, 17, 417, 999])
    for dim in (16, 17, 64):
        ours = shipped.device_free_timestep_embedding(timesteps, dim)
        assert torch.equal(ours, get_timestep_embedding(timesteps, dim))


def _tiny_data():
    return shipped.training_data(seeds=range(200_000, 200_004), size=64)


@pytest.mark.parametrize("key", GENERATIVE_KEYS)
def test_training_is_deterministic_on_cpu_with_a_fixed_seed(key):
    data = _tiny_data()
    settings = generative.Settings(steps=2, batch_size=2, crop=32)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first, losses = shipped.train(key, data, settings, seed=3)
        second, _ = shipped.train(key, data, settings, seed=3)
        other, _ = shipped.train(key, data, settings, seed=4)
    finally:
        torch.set_num_threads(previous)
    assert losses and all(math.isfinite(v) for v in losses.values())
    a, b, c = first.state_dict(), second.state_dict(), other.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert any(not torch.equal(a[name], c[name]) for name in a if a[name].is_floating_point())


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["diffusion", "diffusion_recon"])
def test_a_shipped_diffusion_model_runs_through_the_platform_sampler_as_its_manifest_says(key):
    """A real run (the sandbox child, the platform's DDIM loop) on two held-out phantoms, 10 steps: the outputs
    score what the manifest's held-out check gives for those two cases, to sampling seeds' spread."""
    entry = MODELS[key]
    cases = shipped.heldout_cases(seeds=range(300_000, 300_002))
    kind = TaskKind.TRANSLATION if entry["task"] == shipped.TRANSLATION else TaskKind.RECONSTRUCTION
    task = TaskFactory(kind=kind)
    inputs = cases["t1"] if kind == TaskKind.TRANSLATION else cases["kspace"]
    for i in range(2):
        case = Case.objects.create(dataset=task.dataset, case_id=f"case{i:03d}")
        add_image(case, ImageRole.INPUT, inputs[i])
        add_image(case, ImageRole.REFERENCE, cases["t2"][i])
    model = artifacts.register_model(
        shipped.ARTIFACT_DIR / entry["file"],
        name=entry["name"],
        task=task,
        in_channels=entry["in_channels"],
        spatial_shape=[128, 128],
        family="diffusion",
        scheduler=entry["scheduler"],
    )
    assert validate(model) == ModelStatus.VALID, model.validation_error
    model.refresh_from_db()
    run = runs.create_run(model, seed=0, sampling_steps=10)
    assert run_job(run) == "succeeded", Run.objects.get(pk=run.pk).error
    outputs = {o.case.case_id: o.load() for o in CaseOutput.objects.filter(run=run).select_related("case")}
    prediction = np.stack([outputs["case000"], outputs["case001"]])
    # The same loop run here directly, with the seeds the run gave each case, gives the same images.
    plan = sampling.Sampling(
        spec=sampling.SchedulerSpec.from_dict(entry["scheduler"]),
        kind="ddim",
        steps=10,
        reconstruction=kind == TaskKind.RECONSTRUCTION,
    )
    seeds = [runner.sample_seed(0, 0, position) for position in range(2)]
    direct = sampling.sample_batch(torch.jit.load(str(shipped.ARTIFACT_DIR / entry["file"])), inputs, plan, seeds)
    np.testing.assert_allclose(prediction, direct, atol=1e-4)
    score = shipped.scores(prediction, cases["t2"])
    assert score["ssim"] == pytest.approx(entry["heldout"]["ddim_10"]["ssim"], abs=0.1)
