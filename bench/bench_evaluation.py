"""Whole evaluation of the demo translation runs (pixel + radiomics tiers): cases per second.

Builds the demo in a throw-away data directory (SQLite, no worker), runs the translation
task's models in-process, then times the evaluation job on each run, twice: the first
evaluation also computes and caches the reference set's radiomics features, later ones
reuse them. Peer figure in the same run: scikit-image's SSIM and PSNR per image, the usual
script a researcher would write for the pixel tier alone.

    .venv/bin/python bench/bench_evaluation.py [--cases 40]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="10 cases")
    args = parser.parse_args()
    if args.quick:
        args.cases = 10

    data_dir = tempfile.mkdtemp(prefix="medgen-bench-")
    os.environ["MEDGEN_DATA_DIR"] = data_dir
    os.environ.pop("DATABASE_URL", None)
    os.environ["CELERY_BROKER_URL"] = "memory://"  # jobs are run in-process below
    os.environ.setdefault("SECRET_KEY", "medgen-bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medgen_site.settings")
    os.environ["MEDGEN_FEATURE_EXTRACTORS"] = "radiomics"

    import django

    django.setup()
    import numpy as np
    from django.core.management import call_command
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from core import jobs
    from core.models import JobStatus
    from evaluation import services
    from evaluation.models import Evaluation, MetricResult
    from inference.models import ImageRole, ModelValidation, Run, Task

    call_command("migrate", verbosity=0)
    started = time.monotonic()
    call_command("seed_demo", "--fast", "--cases", str(args.cases), "--volumes", "0", stdout=open(os.devnull, "w"))
    print(f"demo built in {time.monotonic() - started:.0f} s ({args.cases} cases of 128 × 128)")

    task = Task.objects.get(slug="t1-to-t2")
    for validation in ModelValidation.objects.filter(model__task=task):
        jobs.execute("inference.modelvalidation", validation.pk)
    for run in Run.objects.filter(task=task).order_by("pk"):
        jobs.execute("inference.run", run.pk)

    print(f"{'run':38s} {'cases':>5s} {'first (s)':>10s} {'again (s)':>10s} {'cases/s':>8s}  SSIM    FRD")
    rates = []
    for run in Run.objects.filter(task=task, status=JobStatus.SUCCEEDED).order_by("pk"):
        timings = []
        for _ in range(2):
            Evaluation.objects.filter(run=run).delete()
            evaluation = services.request_evaluation(run)
            t0 = time.perf_counter()
            outcome = jobs.execute("evaluation.evaluation", evaluation.pk)
            timings.append(time.perf_counter() - t0)
            assert outcome == "succeeded", Evaluation.objects.get(pk=evaluation.pk).error
        n = run.case_results.count()
        ssim = MetricResult.objects.get(run=run, metric="ssim").value
        frd = MetricResult.objects.get(run=run, metric="frd").value
        rates.append(n / timings[1])
        first, again = timings
        print(f"{run.name[:38]:38s} {n:5d} {first:10.2f} {again:10.2f} {n / again:8.1f}  {ssim:.4f}  {frd:.3f}")

    # Peer: the pixel tier alone with scikit-image, one image at a time.
    run = Run.objects.filter(task=task, status=JobStatus.SUCCEEDED).order_by("pk").first()
    data_range = Evaluation.objects.get(run=run).data_range
    pairs = [
        (o.load()[0].astype(np.float64), o.case.images.get(role=ImageRole.REFERENCE).load()[0].astype(np.float64))
        for o in run.outputs.select_related("case")
    ]
    t0 = time.perf_counter()
    for output, reference in pairs:
        structural_similarity(
            output, reference, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range
        )
        peak_signal_noise_ratio(reference, output, data_range=data_range)
    peer = time.perf_counter() - t0
    print(f"median whole-evaluation rate (pixel + radiomics, cached references): {np.median(rates):.1f} cases/s")
    print(f"scikit-image SSIM + PSNR alone, per-image loop: {len(pairs) / peer:.1f} cases/s")


if __name__ == "__main__":
    main()
