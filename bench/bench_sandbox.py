"""The model sandbox's cost: a small 2D U-Net in the worker process against the same in its sandbox.

Measures, best of a few repeats, (1) loading: `runner.load_model` in this process against
starting a sandbox (spawn, confine, import torch, check the archive and graphs, load); (2) one
batch of 8 × 1 × 128 × 128 float32: `predict` in process against `predict` over the pipe (two
frames of 512 KiB each way plus the model's own time); (3) a run-sized job of 64 cases. Prints
the times and the ratios (sandbox / in process); `--quiet` prints only the ratio line.

    .venv/bin/python bench/bench_sandbox.py [--quiet] [--threads N] [--device cpu|cuda]
"""

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from inference import runner  # noqa: E402
from inference.sandbox.host import Limits, Sandbox  # noqa: E402


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.norm(self.conv1(x)))))


class UNet(nn.Module):
    """Three levels, 16–64 channels (0.12 M parameters)."""

    def __init__(self):
        super().__init__()
        self.down1, self.down2, self.bottom = Block(1, 16), Block(16, 32), Block(32, 64)
        self.up2, self.dec2 = nn.ConvTranspose2d(64, 32, 2, stride=2), Block(64, 32)
        self.up1, self.dec1 = nn.ConvTranspose2d(32, 16, 2, stride=2), Block(32, 16)
        self.head = nn.Conv2d(16, 1, 1)

    def forward(self, x):
        a = self.down1(x)
        b = self.down2(F.max_pool2d(a, 2))
        c = self.bottom(F.max_pool2d(b, 2))
        d = self.dec2(torch.cat([b, self.up2(c)], 1))
        return self.head(self.dec1(torch.cat([a, self.up1(d)], 1)))


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    limits = Limits(threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "unet.pt"
        buffer = io.BytesIO()
        torch.jit.save(torch.jit.script(UNet().eval()), buffer)
        path.write_bytes(buffer.getvalue())
        batch = np.random.default_rng(0).random((8, 1, 128, 128), dtype=np.float32)
        cases = [np.random.default_rng(i).random((1, 128, 128), dtype=np.float32) for i in range(64)]
        options = dict(spatial_dims=2, normalisation="minmax", samples=1, seed=None, batch_size=8)

        def load_here():
            runner.clear_cache()
            return runner.load_model(path, "torchscript", "bench", device=args.device)

        load_in_process = best(load_here, 3)
        here = load_here()
        batch_in_process = best(lambda: here.predict(batch), 10)
        job_in_process = best(lambda: runner.predict_cases(here, cases, **options), 3)

        def start():
            sandbox = Sandbox(path, "torchscript", limits=limits, device=args.device)
            sandbox.start()
            return sandbox

        starts = []
        for _ in range(3):
            t0 = time.perf_counter()
            start().close()
            starts.append(time.perf_counter() - t0)
        start_sandbox = min(starts)
        with start() as there:
            np.testing.assert_array_equal(there.predict(batch), here.predict(batch))
            batch_sandbox = best(lambda: there.predict(batch), 10)
            job_sandbox = best(lambda: runner.predict_cases(there, cases, **options), 3)

    ratio_line = (
        f"sandbox / in process: load {start_sandbox / load_in_process:.1f}×, "
        f"batch {batch_sandbox / batch_in_process:.2f}×, 64-case job {job_sandbox / job_in_process:.2f}×"
    )
    if not args.quiet:
        parameters = sum(p.numel() for p in UNet().parameters())
        print(f"U-Net, {parameters} parameters, {args.threads} thread(s), {args.device}")
        print(f"load:        in process {load_in_process * 1000:8.1f} ms   "
              f"sandbox start {start_sandbox * 1000:8.1f} ms")  # fmt: skip
        print(f"batch 8×128²: in process {batch_in_process * 1000:8.1f} ms   sandbox {batch_sandbox * 1000:8.1f} ms "
              f"(+{(batch_sandbox - batch_in_process) * 1000:.1f} ms IPC)")  # fmt: skip
        print(f"64 cases:    in process {job_in_process * 1000:8.1f} ms   sandbox {job_sandbox * 1000:8.1f} ms")
    print(ratio_line)


if __name__ == "__main__":
    main()
