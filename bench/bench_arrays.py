"""Array endpoints of the viewer: latency of a 256 × 256 float32 slice, and a 128³ volume served slice by slice.

Builds a public task with a 256 × 256 image and a 128³ volume in a throw-away
MEDGEN_DATA_DIR (PostgreSQL when DATABASE_URL is set — the rows are deleted at the end —
else SQLite there), then, through Django's test Client (URL routing, permission queries,
the view, the response; no socket):

* N requests of `/api/arrays/case-images/<pk>/data/?slice=0` for the image: p50 / p95 ms
  (target: p95 ≤ 20 ms), and of the header;
* the volume: N requests of one slice, with the Python heap peak (tracemalloc, which sees
  numpy's buffers) of one request, against the naive peer — `np.load` of the whole file
  (what `inference.storage.load_array` does) and then the slice — in time and peak memory.

There is no peer library for serving arrays: the peer of both items is that naive path (read the
whole file, slice, serialise; in-process, no HTTP — so it is favoured by the routing and the
permission queries it skips). Ratios are of p50 times; each item is measured quietly and then
under 2 busy cores (bench/load.py); the bytes served must equal the peer's exactly.

    .venv/bin/python bench/bench_arrays.py [--quick] [--requests 200] [--busy 2] [--threads 1]
"""

import argparse
import os
import sys
import tracemalloc
from pathlib import Path
from time import perf_counter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Measure, add_arguments, run_quiet_and_loaded, set_threads, setup_django  # noqa: E402


def percentiles(times_s):
    import numpy as np

    ms = np.asarray(times_s) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def timed(fn, n, warmup=10):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t0 = perf_counter()
        fn()
        times.append(perf_counter() - t0)
    return times


def peak_bytes(fn):
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--requests", type=int, default=None, help="requests per figure (default 200; quick 50)")
    args = parser.parse_args()
    args.requests = args.requests or (50 if args.quick else 200)
    set_threads(args.threads)

    data_dir = setup_django("medgen-bench-", sqlite=False)  # PostgreSQL when DATABASE_URL is set
    import numpy as np
    from django.db import connection
    from django.test import Client

    from inference.models import Case, CaseImage, Dataset, ImageRole, Task, TaskKind
    from inference.storage import load_array, save_array

    print(f"database: {connection.vendor}; media in {data_dir}")

    rng = np.random.default_rng(0)
    dataset = Dataset.objects.create(name=f"bench-arrays-{os.getpid()}", is_public=True)
    task = Task.objects.create(
        slug=f"bench-arrays-{os.getpid()}", name="bench", kind=TaskKind.TRANSLATION, dataset=dataset, is_public=True
    )
    try:
        images = {}
        for case_id, shape in (("image", (1, 256, 256)), ("volume", (1, 128, 128, 128))):
            case = Case.objects.create(dataset=dataset, case_id=case_id)
            array = rng.random(shape, dtype=np.float32)
            image = CaseImage(case=case, role=ImageRole.INPUT, source_format="npy", shape=list(shape),
                              spacing=[1.0] * (len(shape) - 1))  # fmt: skip
            save_array(image.array, "input_0.npy", array)
            image.save()
            images[case_id] = (image, array)
        client = Client()

        image, array = images["image"]
        volume, volume_array = images["volume"]
        image_url = f"/api/arrays/case-images/{image.pk}/"
        volume_url = f"/api/arrays/case-images/{volume.pk}/data/?slice=64"
        print(f"128³ volume: {volume_array.nbytes / 2**20:.0f} MiB; {args.requests} requests per figure")

        def naive(case_image, index):
            whole = load_array(case_image.array)  # reads and parses the whole file
            return np.ascontiguousarray(whole[index], dtype="<f4").tobytes()

        def measure():
            response = client.get(image_url + "data/?slice=0")
            assert response.status_code == 200
            got = np.frombuffer(response.content, "<f4").reshape(256, 256)
            peer_bytes = naive(image, 0)
            ours = timed(lambda: client.get(image_url + "data/?slice=0"), args.requests)
            peer = timed(lambda: naive(image, 0), args.requests)
            p50, p95 = percentiles(ours)
            header50, _ = percentiles(timed(lambda: client.get(image_url), args.requests // 4))
            items = [
                Measure(
                    "256² float32 slice, p50",
                    p50 / 1000,
                    percentiles(peer)[0] / 1000,
                    got,
                    np.frombuffer(peer_bytes, "<f4").reshape(256, 256),
                    rtol=0.0,
                    peer_name="np.load + slice, no HTTP",
                    note=f"ours p95 {p95:.2f} ms ({'within' if p95 <= 20 else 'OVER'} the 20 ms p95 target); "
                    f"header p50 {header50:.2f} ms",
                )  # fmt: skip
            ]
            response = client.get(volume_url)
            got = np.frombuffer(response.content, "<f4").reshape(128, 128)
            assert np.array_equal(got, volume_array[0, 64])
            ours = timed(lambda: client.get(volume_url), args.requests)
            peer = timed(lambda: naive(volume, (0, 64)), max(20, args.requests // 4))
            ours_peak = peak_bytes(lambda: client.get(volume_url))
            peer_peak = peak_bytes(lambda: naive(volume, (0, 64)))
            items.append(
                Measure(
                    "128³ volume, one 128² slice, p50",
                    percentiles(ours)[0] / 1000,
                    percentiles(peer)[0] / 1000,
                    got,
                    np.frombuffer(naive(volume, (0, 64)), "<f4").reshape(128, 128),
                    rtol=0.0,
                    peer_name="np.load of the whole file + slice, no HTTP",
                    note=f"heap peak ours {ours_peak / 1024:.0f} KiB, peer {peer_peak / 1024:.0f} KiB "
                    f"({peer_peak / ours_peak:.1f}×)",
                )  # fmt: skip
            )
            return items

        run_quiet_and_loaded(measure, busy=args.busy)
    finally:
        Case.objects.filter(dataset=dataset).delete()
        task.delete()
        dataset.delete()


if __name__ == "__main__":
    main()
