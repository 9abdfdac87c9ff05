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

    .venv/bin/python bench/bench_arrays.py [--requests 200]
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentiles(times_s):
    import numpy as np

    ms = np.asarray(times_s) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def timed(fn, n, warmup=10):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
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
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="medgen-bench-")
    os.environ["MEDGEN_DATA_DIR"] = data_dir
    os.environ.pop("MEDIA_ROOT", None)
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ.setdefault("SECRET_KEY", "medgen-bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medgen_site.settings")

    import django

    django.setup()
    import numpy as np
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from inference.models import Case, CaseImage, Dataset, ImageRole, Task, TaskKind
    from inference.storage import load_array, save_array

    setup_test_environment()  # allows the test Client's host name
    call_command("migrate", verbosity=0)
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
        url = f"/api/arrays/case-images/{image.pk}/"
        response = client.get(url + "data/?slice=0")
        assert response.status_code == 200
        assert np.array_equal(np.frombuffer(response.content, "<f4").reshape(256, 256), array[0])
        p50, p95 = percentiles(timed(lambda: client.get(url + "data/?slice=0"), args.requests))
        print(f"256 × 256 float32 slice ({args.requests} requests): p50 {p50:.2f} ms, p95 {p95:.2f} ms"
              f" ({'within' if p95 <= 20 else 'OVER'} the 20 ms p95 target)")  # fmt: skip
        p50, p95 = percentiles(timed(lambda: client.get(url), args.requests // 4))
        print(f"  its header ({args.requests // 4} requests): p50 {p50:.2f} ms, p95 {p95:.2f} ms")

        volume, volume_array = images["volume"]
        url = f"/api/arrays/case-images/{volume.pk}/data/?slice=64"
        response = client.get(url)
        assert np.array_equal(np.frombuffer(response.content, "<f4").reshape(128, 128), volume_array[0, 64])
        full_bytes = volume_array.nbytes
        ours = timed(lambda: client.get(url), args.requests)
        ours_peak = peak_bytes(lambda: client.get(url))

        def naive():
            whole = load_array(volume.array)  # reads and parses all 8 MiB
            return np.ascontiguousarray(whole[0, 64], dtype="<f4").tobytes()

        assert naive() == response.content
        peer = timed(naive, max(20, args.requests // 4))
        peer_peak = peak_bytes(naive)
        (o50, o95), (n50, n95) = percentiles(ours), percentiles(peer)
        print(f"128³ volume ({full_bytes / 2**20:.0f} MiB), one 128 × 128 slice:")
        print(f"  ours (endpoint, memory-mapped): p50 {o50:.2f} ms, p95 {o95:.2f} ms,"
              f" heap peak {ours_peak / 1024:.0f} KiB")  # fmt: skip
        print(f"  naive np.load of the whole file, then slice (no HTTP): p50 {n50:.2f} ms, p95 {n95:.2f} ms,"
              f" heap peak {peer_peak / 1024:.0f} KiB")  # fmt: skip
        print(f"  ratio naive / ours: time {n50 / o50:.1f}× (p50), heap peak {peer_peak / ours_peak:.1f}×;"
              f" ours peaks at {100 * ours_peak / full_bytes:.1f} % of the volume")  # fmt: skip
        whole = timed(lambda: client.get(f"/api/arrays/case-images/{volume.pk}/data/"), 10, warmup=2)
        print(f"  the whole volume in one request: p50 {percentiles(whole)[0]:.1f} ms")
    finally:
        Case.objects.filter(dataset=dataset).delete()
        task.delete()
        dataset.delete()


if __name__ == "__main__":
    main()
