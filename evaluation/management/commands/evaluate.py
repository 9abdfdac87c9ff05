"""Queue evaluations: of given runs, of runs with stale results, or of every succeeded run."""

from django.core.management.base import BaseCommand, CommandError

from core import jobs
from core.models import JobStatus
from inference.models import Run

from ... import services
from ...models import Evaluation, MetricResult


class Command(BaseCommand):
    help = "Queue (re-)evaluation of succeeded runs on the metrics queue."

    def add_arguments(self, parser):
        parser.add_argument("run_ids", nargs="*", type=int, help="Runs to evaluate.")
        parser.add_argument("--stale", action="store_true", help="Runs with a result from an older metric version.")
        parser.add_argument("--all", action="store_true", help="Every succeeded run.")
        parser.add_argument("--wait", action="store_true", help="Wait for the evaluations to finish.")

    def handle(self, *args, run_ids, stale, all, wait, **options):
        runs = Run.objects.filter(status=JobStatus.SUCCEEDED)
        if run_ids:
            runs = runs.filter(pk__in=run_ids)
        elif stale:
            stale_ids = {r.run_id for r in MetricResult.objects.select_related("run__task") if r.is_stale}
            runs = runs.filter(pk__in=stale_ids)
        elif not all:
            raise CommandError("Name runs, or pass --stale or --all.")
        queued = []
        for run in runs:
            try:
                queued.append(services.request_evaluation(run).pk)
            except services.EvaluationError as exc:
                self.stderr.write(f"run {run.pk}: {exc}")
        self.stdout.write(f"queued {len(queued)} evaluation(s)")
        if wait:
            for evaluation in jobs.wait_for(Evaluation, queued, timeout=3600):
                self.stdout.write(f"run {evaluation.run_id}: {evaluation.status}")
