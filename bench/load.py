"""What every benchmark shares: busy neighbours, the quiet-then-loaded run, one printer.

The project's rule: speed is measured here, not in timed tests, and each benchmark prints a
ratio against the peer measured in the same run, with results that agree with it, quiet and
under load (2 busy cores). This module gives the pieces:

* `busy_cores(n)`: a context manager that starts `n` busy-loop processes (pure-Python spin,
  default 2) and stops them on the way out, also on an exception or Ctrl-C. They are plain
  child processes (``python -c`` of a spin loop, started by `subprocess`, not by a fork of a
  process that may hold torch's thread pool or a database connection), each reports when it
  spins, and each also leaves by itself within a few milliseconds once its parent is gone (it
  watches ``os.getppid()``), so even a killed benchmark leaves no spinner behind.
* `set_threads(n)`: torch's and the BLAS libraries' thread counts, set deliberately (on a
  2-core machine with a busy neighbour a 2-thread torch is several times slower than a 1-thread
  one, so the default — as many threads as cores — measures contention, not code). Ours and
  the peer run with the same count, quiet and loaded.
* `Measure`: one measured item (our seconds, the peer's, both results and the tolerance).
* `run_quiet_and_loaded(fn)`: calls ``fn()`` (a list of `Measure`) quietly, then again with
  `busy_cores`, prints each item as
  ``name: ours X s, peer Y s, ratio Y/X = R (quiet) | ours X s, peer Y s, ratio Y/X = R (loaded)``
  and an agreement line (largest absolute and relative difference against the stated tolerance),
  then a summary table; it exits non-zero (`SystemExit(1)`) when any result disagrees.
"""

import argparse
import contextlib
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BUSY = 2

_SPIN = """
import os, sys
parent = int(sys.argv[1])
print("spinning", flush=True)
x = 0
while os.getppid() == parent:
    for i in range(20000):
        x = (x * 31 + i) % 1000003
"""


@contextlib.contextmanager
def busy_cores(n: int = BUSY):
    """`n` processes spinning on the CPU for the duration of the block; all stopped on exit."""
    processes = []
    try:
        for _ in range(n):
            process = subprocess.Popen(
                [sys.executable, "-c", _SPIN, str(os.getpid())],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            )
            processes.append(process)
        for process in processes:
            line = process.stdout.readline()
            if line.strip() != "spinning":
                raise RuntimeError(f"a busy-loop process did not start (exit {process.poll()})")
        time.sleep(0.2)  # let the scheduler settle
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            if process.stdout:
                process.stdout.close()


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_threads = None


def set_threads(n: int = 1) -> int:
    """Torch's intra-op threads and the BLAS/OpenMP pools of this process: `n` each.

    The pools already loaded are limited now (threadpoolctl); the environment variables make
    the ones loaded later (scipy brings its own OpenBLAS, loaded on first use) start with `n`
    too, and `run_quiet_and_loaded` applies the limit again before each pass. Without this a
    peer on scipy's BLAS ran with 2 threads against our 1 and lost several-fold under load."""
    global _threads
    _threads = n
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n


def add_arguments(parser: argparse.ArgumentParser, *, quick: bool = True) -> argparse.ArgumentParser:
    """The flags every benchmark shares: --quick (unless it has its own), --busy, --threads."""
    if quick:
        parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--busy", type=int, default=BUSY, help=f"busy cores for the loaded run (default {BUSY})")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads, ours and peer alike (default 1)")
    return parser


def best_of(fn, repeats: int = 1, *, sync=None):
    """(fastest seconds, last result) of `repeats` calls; `sync` (e.g. torch.cuda.synchronize) around each."""
    best, result = math.inf, None
    for _ in range(max(1, repeats)):
        if sync:
            sync()
        start = time.perf_counter()
        result = fn()
        if sync:
            sync()
        best = min(best, time.perf_counter() - start)
    return best, result


@dataclass
class Measure:
    """One item: our time and result, the peer's, and how closely the results must agree.

    The results agree when every element satisfies ``|ours - peer| <= atol + rtol * |peer|``
    (NaN where both are NaN, ±inf where both are the same inf). `unit` names what the times
    are (seconds by default; e.g. "ms p50").
    """

    name: str
    ours_s: float
    peer_s: float
    ours: Any
    peer: Any
    atol: float = 0.0
    rtol: float = 1e-9
    peer_name: str = "peer"
    unit: str = "s"
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.peer_s / self.ours_s if self.ours_s > 0 else math.inf

    def differences(self) -> tuple[float, float, bool]:
        """(max abs difference, max relative difference, within the tolerance)."""
        ours = np.asarray(self.ours, dtype=np.float64).ravel()
        peer = np.asarray(self.peer, dtype=np.float64).ravel()
        if ours.shape != peer.shape:
            return math.inf, math.inf, False
        same = (ours == peer) | (np.isnan(ours) & np.isnan(peer))
        finite = np.isfinite(ours) & np.isfinite(peer)
        if not (same | finite).all():  # a NaN or an inf on one side only
            return math.inf, math.inf, False
        diff = np.where(same, 0.0, np.abs(ours - peer))
        diff = np.where(finite | same, diff, 0.0)
        scale = np.abs(np.where(finite, peer, 1.0))
        rel = np.where(diff > 0, diff / np.maximum(scale, 1e-300), 0.0)
        ok = bool(np.all(diff <= self.atol + self.rtol * scale))
        return (float(diff.max()) if diff.size else 0.0), (float(rel.max()) if rel.size else 0.0), ok


def _fmt_time(seconds: float, unit: str) -> str:
    if unit != "s":
        return f"{seconds:.3g} {unit}"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    return f"{seconds:.3g} s"


def _ratio(r: float) -> str:
    return f"{r:.3g}" if abs(r) < 1000 or not math.isfinite(r) else f"{r:.0f}"


def _side(m: Measure, label: str) -> str:
    return (
        f"ours {_fmt_time(m.ours_s, m.unit)}, {m.peer_name} {_fmt_time(m.peer_s, m.unit)}, "
        f"ratio Y/X = {_ratio(m.ratio)} ({label})"
    )


def report(bench: str, quiet: list[Measure], loaded: list[Measure] | None, *, busy: int = BUSY) -> bool:
    """Print each item quiet | loaded with its agreement line and the summary table; True when all agree."""
    loaded_by_name = {m.name: m for m in loaded or []}
    all_ok = True
    rows = []
    print()
    for m in quiet:
        other = loaded_by_name.get(m.name)
        line = f"{m.name}: {_side(m, 'quiet')}"
        if other is not None:
            line += f" | {_side(other, f'loaded, {busy} busy cores')}"
        print(line)
        worst_abs, worst_rel, ok = m.differences()
        for extra in [other] if other is not None else []:
            a, r, o = extra.differences()
            worst_abs, worst_rel, ok = max(worst_abs, a), max(worst_rel, r), ok and o
        all_ok &= ok
        verdict = "agree" if ok else "DISAGREE"
        note = f"; {m.note}" if m.note else ""
        print(
            f"  agreement: max abs diff {worst_abs:.2e}, max rel diff {worst_rel:.2e} "
            f"(tolerance |d| <= {m.atol:g} + {m.rtol:g}·|peer|): {verdict}{note}"
        )
        rows.append((m.name, m.ratio, other.ratio if other is not None else math.nan, ok))
    print(f"\n| bench | item | quiet ratio | loaded ratio ({busy} busy cores) | agree |")
    print("|---|---|---|---|---|")
    for name, q, lo, ok in rows:
        print(f"| {bench} | {name} | {_ratio(q)}× | {_ratio(lo)}× | {'yes' if ok else 'NO'} |")
    return all_ok


def run_quiet_and_loaded(fn, *, bench: str | None = None, busy: int = BUSY, loaded: bool = True) -> list[Measure]:
    """``fn()`` (→ list of `Measure`) quietly, then under `busy` busy cores; prints; exits 1 on disagreement."""
    bench = bench or os.path.basename(sys.argv[0])
    if _threads is not None:
        set_threads(_threads)  # pools loaded since (e.g. scipy's OpenBLAS) get the same limit
    threads = f"{_threads} thread(s) per pool" if _threads is not None else "threads left at their defaults"
    print(f"-- quiet (load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, {threads})", flush=True)
    quiet = fn()
    measured = None
    if loaded and busy > 0:
        if _threads is not None:
            set_threads(_threads)
        with busy_cores(busy):
            print(f"-- loaded: {busy} busy-loop processes (load average {os.getloadavg()[0]:.2f})", flush=True)
            measured = fn()
    ok = report(bench, quiet, measured, busy=busy)
    if not ok:
        print("results disagree with the peer", file=sys.stderr)
        raise SystemExit(1)
    return quiet + (measured or [])


def setup_django(prefix: str, *, sqlite: bool = True, **environ: str) -> str:
    """Django for a bench, in a throw-away data directory: jobs in-process (memory broker), a bench-only
    secret key, `environ` set, the database migrated; SQLite there unless `sqlite` is False (then
    DATABASE_URL, when set, is used). Returns the data directory."""
    import tempfile

    data_dir = tempfile.mkdtemp(prefix=prefix)
    os.environ["MEDGEN_DATA_DIR"] = data_dir
    if sqlite:
        os.environ.pop("DATABASE_URL", None)
    os.environ.pop("MEDIA_ROOT", None)
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ.setdefault("SECRET_KEY", "medgen-bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medgen_site.settings")
    os.environ.update(environ)

    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # allows the test Client's host name
    call_command("migrate", verbosity=0)
    return data_dir
