"""Hallucination probes of a task: build its probe set (a job), then start a probe run of each succeeded run."""

import json

from django.core.management.base import BaseCommand, CommandError

from core import jobs
from core.models import JobStatus
from inference.models import Run, Task

from ...models import ProbeSet
from ...probes import construct, services


class Command(BaseCommand):
    help = (
        "Queue a probe set of a task (or use its latest built one with the same seed and kinds) and start a "
        "probe run of every succeeded run of a model on the task (or of the runs named)."
    )

    def add_arguments(self, parser):
        parser.add_argument("task", help="The task's slug.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--kinds", default=",".join(construct.KINDS), help="Comma-separated probe kinds.")
        parser.add_argument("--config", default="{}", help='JSON, e.g. {"plausible_labels": [3], "csf_labels": [1]}.')
        parser.add_argument("--run", type=int, action="append", default=[], help="A main run to probe (repeat).")
        parser.add_argument("--wait", type=float, default=0, help="Wait up to this many seconds for the probe set.")

    def handle(self, *args, task, seed, kinds, config, run, wait, **options):
        task_row = Task.objects.filter(slug=task).first()
        if task_row is None:
            raise CommandError(f"No task '{task}'.")
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
        try:
            config = json.loads(config)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not JSON: {exc}") from None
        probe_set = (
            ProbeSet.objects.filter(task=task_row, seed=seed, kinds=kinds)
            .exclude(status__in=(JobStatus.FAILED, JobStatus.CANCELLED))
            .order_by("-pk")
            .first()
        )
        if probe_set is None:
            try:
                probe_set = services.request_probe_set(task_row, seed=seed, kinds=kinds, config=config)
            except services.ProbeError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"probe set {probe_set.pk} queued")
        if wait and not probe_set.is_final:
            probe_set = jobs.wait_for(ProbeSet, [probe_set.pk], timeout=wait)[0]
        if probe_set.status != JobStatus.SUCCEEDED:
            self.stdout.write(f"probe set {probe_set.pk} is {probe_set.status}; run again once it has been built")
            return
        runs = Run.objects.filter(
            task=task_row, status=JobStatus.SUCCEEDED, probe_of__isnull=True, model__isnull=False
        ).order_by("pk")
        if run:
            runs = runs.filter(pk__in=run)
        started = []
        for main in runs:
            try:
                started.append(services.start_probe_run(main, probe_set))
            except services.ProbeError as exc:
                self.stderr.write(f"run {main.pk}: {exc}")
        self.stdout.write(
            f"probe set {probe_set.pk}: {probe_set.probe_cases.count()} probe cases; "
            f"probe runs {', '.join(str(r.pk) for r in started) or 'none'}"
        )
