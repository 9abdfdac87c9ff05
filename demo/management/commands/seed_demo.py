"""Seed the demo benchmark: brain MRI phantoms, two tasks, the shipped baseline models and their runs.

Everything goes through the same services as real uploads: the phantoms are written as
files and imported; the baselines are the committed TorchScript files of ``demo/artifacts/``
(trained once by ``make baselines``), each checked against its manifest's sha256 and then
registered like an upload (validated by the worker); the runs, and a DDIM step sweep of each
diffusion model, are queued for the worker.
"""

import json
import os
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from core import jobs
from core.models import JobStatus
from demo import phantom, shipped
from demo.study import FRESH_READER, demo_readers
from demo.tasks import seed_demo_probes, seed_demo_study
from evaluation import downstream, segmentation
from evaluation.models import DownstreamJob, Evaluation
from inference.models import JoinPolicy, Phase, Run, Task, TaskKind
from inference.runner import sha256_of
from inference.services.artifacts import register_model
from inference.services.datasets import import_dataset
from inference.services.runs import create_run
from inference.services.sweeps import start_sweep

TRANSLATION_SLUG = "t1-to-t2"
RECONSTRUCTION_SLUG = "recon-4x"
TEST_SEED_OFFSET = 1_000  # training phantoms use seeds 200000+, so train and test never meet
#: DDIM steps of each diffusion model's sweep (one run per setting), and its samples per case (the SD maps).
SWEEP_STEPS = (2, 5, 10)
SWEEP_SAMPLES = {shipped.TRANSLATION: 2, shipped.RECONSTRUCTION: 1}
#: Registration order: the simple baselines first, so the first runs finish (and show) soonest.
MODEL_ORDER = (
    "identity",
    "intensity_remap",
    "unet",
    "stochastic_unet",
    "pix2pix",
    "cyclegan",
    "cvae",
    "diffusion",
    "zero_filled",
    "denoiser",
    "gan_recon",
    "diffusion_recon",
)


class Command(BaseCommand):
    help = "Create the demo benchmark (phantom datasets, two tasks, baseline models) and queue its runs."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing if the demo already exists.")
        parser.add_argument("--cases", type=int, default=40, help="Test slices per task.")
        parser.add_argument("--volumes", type=int, default=4, help="Small phantom volumes (separate dataset).")
        parser.add_argument("--fast", action="store_true", help="Downstream segmenters trained for seconds (tests).")
        parser.add_argument("--wait", type=float, default=0, help="Wait up to this many seconds for the runs.")

    def handle(self, *args, **options):
        if Task.objects.filter(slug=TRANSLATION_SLUG).exists():
            if options["if_empty"]:
                self.stdout.write("Demo already seeded; nothing to do.")
                return
            raise CommandError("The demo is already seeded (task 't1-to-t2' exists).")
        started = time.monotonic()
        admin = self.demo_users()
        with tempfile.TemporaryDirectory(prefix="medgen-demo-") as tmp:
            tmp = Path(tmp)
            translation_ds, recon_ds = self.import_datasets(tmp, options["cases"], options["volumes"], admin)
            translation, recon = self.create_tasks(translation_ds, recon_ds)
            self.declare_downstream(translation, fast=options["fast"])
        self.stdout.write(f"Datasets imported ({time.monotonic() - started:.0f} s). Registering the shipped models…")
        run_ids = self.register_models({shipped.TRANSLATION: translation, shipped.RECONSTRUCTION: recon}, admin)
        self.queue_reader_study(fast=options["fast"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo seeded in {time.monotonic() - started:.0f} s: {len(run_ids)} runs queued for the worker."
            )
        )
        if options["wait"]:
            self.wait_for_runs(run_ids, options["wait"])

    def demo_users(self):
        users = get_user_model()
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin")
        admin, created = users.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.org"}
        )
        if created:
            admin.set_password(password)
            admin.save()
            self.stdout.write(f"Staff user 'admin' created with password '{password}' (set DEMO_ADMIN_PASSWORD).")
        return admin

    def import_datasets(self, tmp, n_cases, n_volumes, admin):
        slices_dir, recon_dir, volumes_dir = tmp / "slices", tmp / "recon", tmp / "volumes"
        for index in range(n_cases):
            seed = TEST_SEED_OFFSET + index
            brain = phantom.make_brain_slice(np.random.default_rng(seed))
            case_id = f"brain-{index:03d}"
            has_lesion = bool(brain["lesion_mask"].max() > 0)
            meta = {"phantom_seed": seed, "has_lesion": has_lesion, "contrast_in": "T1", "contrast_out": "T2"}
            write_case(slices_dir / case_id, brain["t1"], brain["t2"], brain["lesion_mask"], meta)
            mask = phantom.undersampling_mask(brain["t2"].shape, acceleration=4, seed=seed)
            kspace = phantom.undersample(brain["t2"], mask)
            recon_meta = {"phantom_seed": seed, "acceleration": 4, "sampled_fraction": float(mask.mean())}
            write_case(recon_dir / case_id, kspace, brain["t2"], brain["lesion_mask"], recon_meta, channels=True)
        for index in range(n_volumes):
            seed = TEST_SEED_OFFSET + 500 + index
            brain = phantom.make_brain_volume(np.random.default_rng(seed))
            folder = volumes_dir / f"volume-{index:02d}"
            folder.mkdir(parents=True)
            for role, key in (("input", "t1"), ("reference", "t2"), ("label", "lesion_mask")):
                save_nifti(folder / f"{role}.nii.gz", brain[key], spacing=(2.0, 1.0, 1.0))
            (folder / "metadata.json").write_text(json.dumps({"phantom_seed": seed}))

        common = {"is_public": True, "user": admin}
        translation = import_dataset(
            "Brain phantom T1/T2 slices (demo)",
            slices_dir,
            description=f"{n_cases} procedural brain MRI slices (128×128): T1 input, T2 reference, lesion mask.",
            source_label="demo.phantom",
            **common,
        )
        recon = import_dataset(
            "Brain phantom 4× undersampled k-space (demo)",
            recon_dir,
            description="Centred k-space (real, imaginary) of the T2 slices with a random 4× Cartesian mask; "
            "fully sampled T2 reference.",
            source_label="demo.phantom",
            **common,
        )
        if n_volumes:
            import_dataset(
                "Brain phantom volumes (demo)",
                volumes_dir,
                description=f"{n_volumes} small T1/T2 phantom volumes (32×96×96, 2×1×1 mm) with lesion masks.",
                source_label="demo.phantom",
                **common,
            )
        return translation, recon

    def create_tasks(self, translation_ds, recon_ds):
        translation = Task.objects.create(
            slug=TRANSLATION_SLUG,
            name="T1→T2 translation (brain phantom)",
            kind=TaskKind.TRANSLATION,
            description="Synthesise the T2-weighted slice from the T1-weighted slice of the same phantom.",
            dataset=translation_ds,
            metrics=["psnr", "ssim", "ms_ssim", "nmse", "mae"],
            primary_metric="ssim",
            is_public=True,
            # A hidden test set: its T2 references (and their copies, the reconstruction task's references)
            # reach its organisers only; participants join at once and submit 3 times a day at most.
            hidden_references=True,
            join_policy=JoinPolicy.AUTO,
        )
        Phase.objects.create(
            task=translation,
            name="Open phase",
            starts_at=timezone.now(),
            limit_per_period=3,
            period_hours=24,
        )
        recon = Task.objects.create(
            slug=RECONSTRUCTION_SLUG,
            name="4× undersampled reconstruction (brain phantom)",
            kind=TaskKind.RECONSTRUCTION,
            description="Reconstruct the T2 magnitude image from 4× undersampled Cartesian k-space.",
            dataset=recon_ds,
            metrics=["psnr", "ssim", "ms_ssim", "nmse", "mae"],
            primary_metric="psnr",
            is_public=True,
        )
        return translation, recon

    def declare_downstream(self, task, fast=False):
        """The clinical tier's downstream task on the lesion masks: every translation run that succeeds
        (and the real images, once) trains a segmenter; see evaluation/downstream.py."""
        config = segmentation.DEMO_CONFIG
        seeds = (0, 1, 2)
        if fast:  # tests: a few epochs and two seeds, so the whole path runs in seconds
            config = segmentation.SegmentationConfig(name="unet-8-16-32-e8-fast", epochs=8)
            seeds = (0, 1)
        downstream.declare_downstream(task, config=config, seeds=seeds, queue_existing=False)

    def register_models(self, tasks, admin):
        """Each shipped artifact through the upload path (`register_model`: format check, storage, validation
        job), after checking its bytes against the manifest; one run each, or a DDIM sweep for a diffusion model."""
        manifest = shipped.load_manifest()
        entries = manifest["models"]
        if set(entries) != set(MODEL_ORDER):
            raise CommandError(f"demo/artifacts/manifest.json lists {sorted(entries)}, expected {sorted(MODEL_ORDER)}.")
        run_ids = []
        for key in MODEL_ORDER:
            entry = entries[key]
            path = shipped.ARTIFACT_DIR / entry["file"]
            if not path.is_file():
                raise CommandError(f"Shipped model file missing: {path} (run 'make baselines' or restore it from git).")
            digest = sha256_of(path)
            if digest != entry["sha256"]:
                raise CommandError(
                    f"{path.name}: sha256 {digest} is not the manifest's {entry['sha256']}; the file was changed "
                    "(restore it from git, or rebuild every artifact with 'make baselines')."
                )
            task = tasks[entry["task"]]
            with transaction.atomic():
                model = register_model(
                    path,
                    name=entry["name"],
                    task=task,
                    description=entry["description"],
                    in_channels=entry["in_channels"],
                    out_channels=entry["out_channels"],
                    spatial_shape=manifest["image_size"],
                    family=entry["family"],
                    scheduler=entry.get("scheduler"),
                    stochastic=entry.get("stochastic", False),
                    samples_per_case=entry.get("samples_per_case", 1),
                    original_name=entry["file"],
                    user=admin,
                )
                if model.is_noise_predictor:
                    runs = start_sweep(
                        model,
                        steps=SWEEP_STEPS,
                        scheduler="ddim",
                        samples_per_case=SWEEP_SAMPLES[entry["task"]],
                        seed=0,
                        user=admin,
                    )
                else:
                    runs = [create_run(model, user=admin, name=entry["name"], seed=0)]
            run_ids.extend(run.pk for run in runs)
        return run_ids

    def queue_reader_study(self, fast=False):
        """The demo reader studies (demo/study.py) wait on the worker for the translation runs and
        their evaluations: one is built, answered by simulated readers, closed and published; the
        other is left open for the fresh reader account."""
        demo_readers()
        transaction.on_commit(lambda: seed_demo_study.apply_async(kwargs={"items_per_model": 3 if fast else 5}))
        # The hallucination probes of the translation runs, once the leaderboard's tiers are filled.
        transaction.on_commit(seed_demo_probes.delay)
        self.stdout.write(
            f"Reader studies queued: they start once the translation runs are evaluated; log in as "
            f"'{FRESH_READER}' (password '{FRESH_READER}') to read yours."
        )

    def wait_for_runs(self, run_ids, timeout):
        """Wait for the runs, then for the evaluations of those that succeeded, then the downstream jobs."""
        deadline = time.monotonic() + timeout
        runs = jobs.wait_for(Run, run_ids, timeout=timeout)
        succeeded = [run.pk for run in runs if run.status == JobStatus.SUCCEEDED]
        remaining = lambda: max(0.0, deadline - time.monotonic())  # noqa: E731
        expected = list(Evaluation.objects.filter(run__in=succeeded).values_list("pk", flat=True))
        jobs.wait_for(Evaluation, expected, timeout=remaining())
        downstream_jobs = DownstreamJob.objects.filter(setup__task__runs__in=succeeded).distinct()
        jobs.wait_for(DownstreamJob, list(downstream_jobs.values_list("pk", flat=True)), timeout=remaining())
        for run in Run.objects.filter(pk__in=run_ids).order_by("pk"):
            evaluation = Evaluation.objects.filter(run=run).first()
            evaluated = f"; evaluation {evaluation.status} {evaluation.error}" if evaluation else ""
            self.stdout.write(f"  {run.name}: {run.status} {run.error}{evaluated}")


def write_case(folder, input_array, reference, label, metadata, channels=False):
    folder.mkdir(parents=True)
    np.save(folder / "input.npy", input_array if channels else input_array[None])
    np.save(folder / "reference.npy", reference[None].astype(np.float32))
    np.save(folder / "label.npy", label[None].astype(np.float32))
    (folder / "metadata.json").write_text(json.dumps(metadata))


def save_nifti(path, volume_dhw, spacing):
    """Write a (D, H, W) volume as NIfTI (x, y, z) = (W, H, D), with zooms in that order."""
    data = np.ascontiguousarray(np.transpose(volume_dhw, (2, 1, 0)).astype(np.float32))
    affine = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    nib.save(nib.Nifti1Image(data, affine), str(path))
