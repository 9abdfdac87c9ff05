"""Sampling sweeps: one run of a diffusion noise predictor per setting (e.g. 5, 10, 25, 50 DDIM steps).

A sweep is named per model; its runs are ordinary runs (`runs.create_run`, the job framework) that carry
the sweep's name, so each is cancelled, retried and evaluated like any run, and the leaderboard joins a
model's sweep into one curve of quality against latency. Starting the same sweep again starts nothing
new: a setting that already has a run (waiting, running or succeeded) keeps it; only a setting whose run
failed or was cancelled gets a new run.
"""

from django.db import transaction

from core.models import FINAL, JobStatus

from ..models import GenerativeModel, Run
from .runs import RunConflict, RunError, cancel_run, create_run, sampling_settings

DEFAULT_STEPS = (5, 10, 25, 50)
MAX_SETTINGS = 32


def default_sweep_name(scheduler, samples_per_case, seed):
    return f"{scheduler or 'default'} steps, {samples_per_case or 'default'} sample(s), seed {seed}"


def start_sweep(
    model: GenerativeModel,
    *,
    steps=DEFAULT_STEPS,
    scheduler: str = "ddim",
    samples_per_case: int | None = None,
    seed: int = 0,
    name: str = "",
    user=None,
) -> list[Run]:
    """The sweep's runs, one per number of steps (in the order given), started where none is live."""
    if not model.is_noise_predictor:
        raise RunError(f"Model '{model.name}' is not a diffusion noise predictor: there is nothing to sweep.")
    steps = list(dict.fromkeys(steps))
    if not steps or len(steps) > MAX_SETTINGS:
        raise RunError(f"A sweep has from 1 to {MAX_SETTINGS} settings of the sampling steps.")
    settings = [
        sampling_settings(model, sampling_steps=n, scheduler=scheduler, samples_per_case=samples_per_case)
        for n in steps
    ]
    sweep = name or default_sweep_name(settings[0]["scheduler"], settings[0]["samples_per_case"], seed)
    runs = []
    with transaction.atomic():
        GenerativeModel.objects.select_for_update().get(pk=model.pk)  # one sweep start at a time per model
        for setting in settings:
            existing = (
                Run.objects.filter(model=model, sweep=sweep, seed=seed, **setting)
                .exclude(status__in=(JobStatus.FAILED, JobStatus.CANCELLED))
                .order_by("-pk")
                .first()
            )
            if existing is None:
                label = f"{model.name} · {setting['scheduler'].upper()} {setting['sampling_steps']} steps"
                existing = create_run(model, user=user, name=label, seed=seed, sweep=sweep, **setting)
            runs.append(existing)
    return runs


def sweep_runs(model: GenerativeModel, sweep: str):
    return Run.objects.filter(model=model, sweep=sweep).order_by("sampling_steps", "pk")


def cancel_sweep(model: GenerativeModel, sweep: str) -> list[Run]:
    """Cancel every run of the sweep that has not finished; the finished ones stay as they are."""
    cancelled = []
    for run in sweep_runs(model, sweep).exclude(status__in=FINAL):
        try:
            cancelled.append(cancel_run(run.pk))
        except RunConflict:  # finished meanwhile
            continue
    if not cancelled and not sweep_runs(model, sweep).exists():
        raise RunError(f"Model '{model.name}' has no sweep '{sweep}'.")
    return cancelled
