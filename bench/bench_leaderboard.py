"""A leaderboard of 300 runs × 15 metrics on PostgreSQL, under 8 concurrent clients.

Builds a task with 300 succeeded runs (40 cases each: six pixel metrics per case, eight
feature metrics and one clinical metric per run) in a throw-away PostgreSQL database, serves
the site with waitress (`manage.py serve --no-worker`) on loopback and drives the page and its
JSON with 8 concurrent keep-alive clients (bench/loadgen.py). Server time and the number of
SQL queries come from the `Server-Timing` header. The same is done with 30 runs to show that
the number of queries does not grow with the runs.

Peer in the same run: the leaderboard as a script or a naive view computes it, one query per
run for its results and per-case values (an N+1 pattern), ranking with scipy's rankdata and
Wilcoxon from scipy, with no cache. There is no peer library for a leaderboard: that naive
view is the peer, and it does less than ours (no rank bootstrap, no Holm, no Pareto front).
The ratio printed is of the uncached in-process build, quietly and then under 2 busy cores
(bench/load.py); agreement: every run's rank on the primary metric (SSIM) and its Wilcoxon
p-value against the leader, ours against the peer's (1e-9 absolute). The HTTP figures under 8
clients are printed in both conditions too (the server process feels the busy cores as well).

    .venv/bin/python bench/bench_leaderboard.py [--quick] [--runs 300] [--seconds 15] [--busy 2] [--threads 1]
Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/medgen_bench).
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Measure, add_arguments, best_of, run_quiet_and_loaded, set_threads  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/medgen_bench"


def ensure_database(url):
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build(n_runs, n_cases, slug):
    from evaluation.metrics import catalog
    from evaluation.models import MetricResult
    from inference.models import Run
    from tests.support.factories import make_task
    from tests.support.leaderboard_data import populate

    task = make_task(n_cases=n_cases, shape=(1, 4, 4), slug=slug, primary_metric="ssim",
                     metrics=list(catalog.DEFAULT_PIXEL_METRICS))  # fmt: skip
    runs = populate(task, n_runs, n_cases, seed=n_runs)
    clinical = "downstream_dice" if "downstream_dice" in getattr(catalog, "METRICS", {}) else None
    if clinical:
        MetricResult.objects.bulk_create(
            MetricResult(
                run=run,
                metric=clinical,
                tier=catalog.get(clinical).tier,
                value=0.5 + 0.001 * i,
                ci_low=0.45,
                ci_high=0.55,
                version=catalog.metric_version(clinical),
            )  # fmt: skip
            for i, run in enumerate(runs)
        )
    n_metrics = MetricResult.objects.filter(run__task=task).values("metric", "extractor").distinct().count()
    return task, Run.objects.filter(task=task).count(), n_metrics


def naive_leaderboard(task):
    """The peer: one query per run, scipy for ranks and tests, nothing cached; (SSIM ranks, p-values) by run."""
    import scipy.stats

    from core.models import JobStatus
    from evaluation.metrics import catalog
    from inference.models import Run

    rows = []
    for run in Run.objects.filter(task=task, status=JobStatus.SUCCEEDED):
        values = {(r.metric, r.extractor): r.value for r in run.metric_results.all()}
        per_case = [r.values.get("ssim") for r in run.case_results.order_by("case_id")]
        rows.append((run, values, np.array([np.nan if v is None else float(v) for v in per_case])))
    for key in {key for _run, values, _cases in rows for key in values}:
        column = np.array([values.get(key, np.nan) for _run, values, _cases in rows])
        sign = -1 if key[0] in catalog.METRICS and catalog.get(key[0]).higher_is_better else 1
        scipy.stats.rankdata(sign * column, method="min", nan_policy="omit")
    ssim = np.array([values.get(("ssim", ""), np.nan) for _run, values, _cases in rows])
    ssim_ranks = scipy.stats.rankdata(-ssim, method="min", nan_policy="omit")
    leader = int(np.nanargmax(ssim))
    p_values = {}
    for index, (run, _values, cases) in enumerate(rows):
        if index != leader:
            p_values[run.pk] = scipy.stats.wilcoxon(cases, rows[leader][2]).pvalue
    return {run.pk: rank for (run, _values, _cases), rank in zip(rows, ssim_ranks, strict=True)}, p_values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--runs", type=int, default=None, help="runs on the big board (default 300; quick 100)")
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=None, help="load per task (default 15; quick 3)")
    args = parser.parse_args()
    args.runs = args.runs or (100 if args.quick else 300)
    args.seconds = args.seconds or (3.0 if args.quick else 15.0)
    set_threads(args.threads)

    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    env = dict(os.environ, DATABASE_URL=url, MEDGEN_DATA_DIR=tempfile.mkdtemp(prefix="medgen-bench-"),
               CELERY_BROKER_URL="memory://", DJANGO_SETTINGS_MODULE="medgen_site.settings",
               SECRET_KEY=os.environ.get("SECRET_KEY", "medgen-bench-only"), MEDGEN_SERVER_TIMING="all")  # fmt: skip
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from bench import loadgen
    from evaluation import leaderboard

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    started = time.monotonic()
    big, n_runs, n_metrics = build(args.runs, args.cases, "bench-big")
    small, n_small, _ = build(30, args.cases, "bench-small")
    print(f"PostgreSQL: {n_runs} runs × {n_metrics} metrics × {args.cases} cases (+ {n_small} runs) "
          f"written in {time.monotonic() - started:.1f} s")  # fmt: skip

    def in_process():
        """The cold build (analysis included) against the naive peer, both uncached."""
        with CaptureQueriesContext(connection) as ours_queries:
            ours_s, board = best_of(lambda: leaderboard.compute(big))
        reset_queries()
        with CaptureQueriesContext(connection) as peer_queries:
            peer_s, (peer_ranks, peer_p) = best_of(lambda: naive_leaderboard(big))
        ours_ranks = {row.run_id: row.rank for row in board.rows}
        ours_p = {row.run_id: row.comparison.p_value for row in board.rows if row.comparison is not None}
        ids = sorted(peer_ranks)
        p_ids = sorted(peer_p)
        ours = [ours_ranks.get(i, np.nan) for i in ids] + [ours_p.get(i, np.nan) for i in p_ids]
        peer = [peer_ranks[i] for i in ids] + [peer_p[i] for i in p_ids]
        connection.close()
        return Measure(
            f"uncached leaderboard build, {n_runs} runs × {n_metrics} metrics", ours_s, peer_s, ours, peer,
            atol=1e-9, rtol=0.0, peer_name="naive N+1 view (ranks + Wilcoxon only)",
            note=f"queries: ours {len(ours_queries)}, peer {len(peer_queries)}; agreement of SSIM ranks and p-values",
        )  # fmt: skip

    port = free_port()
    log = open(Path(env["MEDGEN_DATA_DIR"]) / "serve.log", "w")
    command = [sys.executable, "manage.py", "serve", "--no-worker", "--port", str(port), "--threads", "8"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        loadgen.wait_for_server("127.0.0.1", port, "/")
        paths = {}
        for task, runs in ((small, n_small), (big, n_runs)):
            page = f"/tasks/{task.slug}/leaderboard/"
            api = f"/api/tasks/{task.slug}/leaderboard/?format=json"
            first = loadgen.run("127.0.0.1", port, [page, api], clients=1, seconds=0.01)
            cold = first.summary()
            paths[runs] = (page, api)
            print(f"{runs:4d} runs, first request (builds and caches the analysis): "
                  f"server {cold['server_max']:.0f} ms")  # fmt: skip

        def over_http():
            print(f"{args.clients} concurrent clients for {args.seconds:.0f} s per task, page and JSON alternating:")
            print(f"{'runs':>5} {'endpoint':<10} {'requests':>8} {'req/s':>7} {'server p50':>11} {'server p95':>11} "
                  f"{'client p95':>11} {'queries':>8}")  # fmt: skip
            worst = 0.0
            queries = {}
            for runs in sorted(paths):
                page, api = paths[runs]
                result = loadgen.run("127.0.0.1", port, [page, api], clients=args.clients, seconds=args.seconds)
                for name, prefix in (("page", page), ("JSON", api)):
                    s = result.summary(prefix)
                    assert s["errors"] == 0, f"{s['errors']} failed requests"
                    queries[(runs, name)] = s["queries"]
                    if runs == n_runs:
                        worst = max(worst, s["server_p95"])
                    counts = ",".join(map(str, s["queries"]))
                    print(
                        f"{runs:>5} {name:<10} {s['n']:>8} {s['n'] / result.seconds:>7.0f} {s['server_p50']:>9.1f}ms "
                        f"{s['server_p95']:>9.1f}ms {s['client_p95']:>9.1f}ms {counts:>8}"
                    )
            same = all(queries[(n_small, name)] == queries[(n_runs, name)] for name in ("page", "JSON"))
            print(f"queries per request, {n_small} vs {n_runs} runs: "
                  f"{'the same' if same else 'DIFFERENT'} ({queries})")  # fmt: skip
            print(f"server p95 with {n_runs} runs: {worst:.1f} ms (target ≤ 150 ms): "
                  f"{'ok' if worst <= 150 else 'MISSED'}")  # fmt: skip

        def measure():
            item = in_process()
            over_http()
            return [item]

        run_quiet_and_loaded(measure, busy=args.busy)
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
