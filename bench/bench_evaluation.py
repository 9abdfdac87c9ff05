"""Whole evaluation of the demo translation runs (pixel + radiomics tiers): cases per second.

Builds the demo in a throw-away data directory (SQLite, no worker), runs the translation
task's models in-process, then times the evaluation job on each run, twice: the first
evaluation also computes and caches the reference set's radiomics features, later ones
reuse them. Peer figure in the same run: scikit-image's SSIM and PSNR per image, the usual
script a researcher would write for the pixel tier alone (the naive peer: it does less than
ours, which also computes the radiomics tier, confidence intervals and stores every result).

Printed as seconds per case (ours: the second, cached evaluation of every run; the peer: its
SSIM + PSNR loop over the same outputs), quietly and then under 2 busy cores (bench/load.py),
with the same torch/BLAS thread count (``--threads``, default 1). Agreement: each run's stored
mean SSIM and PSNR against scikit-image's over the same cases, within 1e-6 absolute.

    .venv/bin/python bench/bench_evaluation.py [--quick] [--cases 40] [--busy 2] [--threads 1]
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Measure, add_arguments, run_quiet_and_loaded, set_threads, setup_django  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40)
    add_arguments(parser, quick=False)
    parser.add_argument("--quick", action="store_true", help="10 cases")
    args = parser.parse_args()
    if args.quick:
        args.cases = 10
    set_threads(args.threads)

    setup_django("medgen-bench-", MEDGEN_FEATURE_EXTRACTORS="radiomics")  # jobs are run in-process below
    import numpy as np
    from django.core.management import call_command
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from core import jobs
    from core.models import JobStatus
    from evaluation import services
    from evaluation.models import Evaluation, MetricResult
    from inference.models import ImageRole, ModelValidation, Run, Task

    started = time.monotonic()
    call_command("seed_demo", "--fast", "--cases", str(args.cases), "--volumes", "0", stdout=open(os.devnull, "w"))
    print(f"demo built in {time.monotonic() - started:.0f} s ({args.cases} cases of 128 × 128)")

    task = Task.objects.get(slug="t1-to-t2")
    for validation in ModelValidation.objects.filter(model__task=task):
        jobs.execute("inference.modelvalidation", validation.pk)
    for run in Run.objects.filter(task=task).order_by("pk"):
        jobs.execute("inference.run", run.pk)

    runs = list(Run.objects.filter(task=task, status=JobStatus.SUCCEEDED).order_by("pk"))
    set_threads(args.threads)  # the jobs may have set torch's threads their own way

    def evaluate_twice(run):
        timings = []
        for _ in range(2):
            Evaluation.objects.filter(run=run).delete()
            evaluation = services.request_evaluation(run)
            t0 = time.perf_counter()
            outcome = jobs.execute("evaluation.evaluation", evaluation.pk)
            timings.append(time.perf_counter() - t0)
            assert outcome == "succeeded", Evaluation.objects.get(pk=evaluation.pk).error
        return timings

    def skimage_pixel_tier(run):
        """The peer on one run (the first sample of each case): (seconds, cases, mean SSIM, mean PSNR)."""
        data_range = Evaluation.objects.get(run=run).data_range
        pairs = [
            (o.load()[0].astype(np.float64), o.case.images.get(role=ImageRole.REFERENCE).load()[0].astype(np.float64))
            for o in run.outputs.filter(sample=0).select_related("case")
        ]
        t0 = time.perf_counter()
        values = [
            (
                structural_similarity(output, reference, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                      data_range=data_range),
                peak_signal_noise_ratio(reference, output, data_range=data_range),
            )
            for output, reference in pairs
        ]  # fmt: skip
        seconds = time.perf_counter() - t0
        ssim, psnr = np.mean(values, axis=0)
        return seconds, len(pairs), ssim, psnr

    def measure():
        print(f"{'run':38s} {'cases':>5s} {'first (s)':>10s} {'again (s)':>10s} {'cases/s':>8s}  SSIM    FRD")
        ours_s = peer_s = cases = 0
        ours_values, peer_values = [], []
        for run in runs:
            first, again = evaluate_twice(run)
            n = run.case_results.count()
            stored = {
                m.metric: m.value for m in MetricResult.objects.filter(run=run, metric__in=["ssim", "psnr", "frd"])
            }
            print(f"{run.name[:38]:38s} {n:5d} {first:10.2f} {again:10.2f} {n / again:8.1f}  "
                  f"{stored['ssim']:.4f}  {stored['frd']:.3f}")  # fmt: skip
            seconds, n_peer, ssim, psnr = skimage_pixel_tier(run)
            assert n_peer == n
            ours_s, peer_s, cases = ours_s + again, peer_s + seconds, cases + n
            if not run.outputs.filter(sample__gt=0).exists():  # several samples: ours averages over them
                ours_values.append([stored["ssim"], stored["psnr"]])
                peer_values.append([ssim, psnr])
        return [
            Measure(
                f"evaluation of {len(runs)} runs, per case (ours: pixel + radiomics, cached references)",
                ours_s / cases,
                peer_s / cases,
                ours_values,
                peer_values,
                atol=1e-6,
                rtol=0.0,
                peer_name="scikit-image SSIM + PSNR loop",
                note="agreement of each one-sample run's mean SSIM and PSNR",
            )  # fmt: skip
        ]

    run_quiet_and_loaded(measure, busy=args.busy)


if __name__ == "__main__":
    main()
