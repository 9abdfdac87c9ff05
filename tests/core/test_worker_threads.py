"""Each worker pool process sets its CPU threads deliberately (core.threads)."""

import os
import time

import pytest

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def logged_threads(worker, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in worker.read_log().splitlines():
            if "CPU thread(s) for torch" in line:
                return int(line.split(": ")[-1].split(" ")[0])
        time.sleep(0.2)
    raise AssertionError(f"no thread count logged:\n{worker.read_log()[-2000:]}")


def test_a_pool_process_takes_the_configured_threads_or_cores_over_concurrency(worker_factory):
    assert logged_threads(worker_factory(MEDGEN_WORKER_THREADS=1)) == 1
    assert logged_threads(worker_factory()) == max(1, (os.cpu_count() or 1) // 1)  # concurrency 1
