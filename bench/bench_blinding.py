"""Blinding by timing: a real and a synthetic image of a reader study take the same time to serve.

The claim (the reader-study issue's blinding requirement): nothing a reader can reach tells a real
image from a synthetic one, the time a request takes included. It was once a timed assertion in
tests/readerstudy/test_blinding.py; the test now checks that both take the same code path (the
same queries, headers and bytes) and the time is measured here, quietly and under 2 busy cores
(bench/load.py).

There is no peer library: "ours" is a real image's request (header, then data), the "peer" the
synthetic image's, interleaved request by request through Django's test Client (URL routing,
permissions, the view; no socket) on SQLite in a throw-away MEDGEN_DATA_DIR. The floor (fastest
of N) is compared — what the code path costs; medians move with whatever else the machine does —
and the run fails unless the floors agree within 1 ms plus a fifth of the synthetic one (the ratio
printed should be about 1). The bytes served are checked to have the same length.

    .venv/bin/python bench/bench_blinding.py [--quick] [--requests 300] [--busy 2] [--threads 1]
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Measure, add_arguments, run_quiet_and_loaded, set_threads, setup_django  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--requests", type=int, default=None, help="requests per source (default 300; quick 150)")
    args = parser.parse_args()
    n = args.requests or (150 if args.quick else 300)
    set_threads(args.threads)

    setup_django("medgen-bench-blinding-")
    from django.test import Client

    from readerstudy.models import Assignment, ImageSource
    from tests.support.study_data import make_reader, make_study, make_study_task

    reader = make_reader()
    task, runs = make_study_task(n_cases=12, n_runs=2, shape=(1, 128, 128))
    study = make_study(task, runs, readers=[reader], items_per_model=4, attention_checks=1, repeated_items=2)
    client = Client()
    client.force_login(reader)

    assignments = Assignment.objects.filter(session__study=study, session__reader=reader).select_related("item")
    by_source = {}
    for assignment in assignments:
        if assignment.item.kind == "regular":
            by_source.setdefault(assignment.item.image.source, assignment)
    # The reader answers up to both items (images of answered items stay readable while the study runs).
    last = max(a.position for a in by_source.values())
    state = client.get(f"/api/read/{study.uid}/state/").json()
    while state["done"] <= last:
        body = {"item": state["item"]["token"], "answer": {"call": "real", "confidence": 3}, "key": f"k{state['done']}"}
        client.post(f"/api/read/{study.uid}/answers/", json.dumps(body), content_type="application/json")
        state = client.get(f"/api/read/{study.uid}/state/").json()
    urls = {source: f"/api/read/items/{a.token}/images/0/" for source, a in by_source.items()}
    print(f"SQLite; a Turing study of 128 × 128 images; {n} interleaved requests per source (header + data)")

    def fetch(url):
        header = client.get(url).json()
        return len(client.get(header["data_url"]).content)

    def measure():
        times = {source: [] for source in urls}
        sizes = {source: set() for source in urls}
        for url in urls.values():
            fetch(url)  # warm
        for _ in range(n):
            for source, url in urls.items():
                start = time.perf_counter()
                sizes[source].add(fetch(url))
                times[source].append(time.perf_counter() - start)
        real, synthetic = min(times[ImageSource.REAL]), min(times[ImageSource.SYNTHETIC])
        assert sizes[ImageSource.REAL] == sizes[ImageSource.SYNTHETIC], sizes
        return [
            Measure(
                "image header + data, fastest request",
                real,
                synthetic,
                real,
                synthetic,
                atol=1e-3,
                rtol=0.2,
                peer_name="the synthetic image",
                unit="s",
                note="ours = the real image; agreement is of the times themselves",
            )  # fmt: skip
        ]

    run_quiet_and_loaded(measure, busy=args.busy)


if __name__ == "__main__":
    main()
