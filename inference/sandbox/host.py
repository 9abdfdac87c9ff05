"""The worker's side of the sandbox: one confined child process per job, spoken to over pipes.

    with Sandbox(path, "torchscript", limits=Limits(...), device="cpu") as model:
        log(model.confinement)          # what the child could apply on this machine
        runner.dry_run(model, ...)      # `model` behaves like a `runner.LoadedModel`

Whatever the model does, the worker gets a `SandboxError` whose message names the cause: a
refusal by the checks (the operation or the tensor), the memory or time limit, a signal, an
exit. The wall-clock limit and a resident-memory watch run in a watchdog thread that kills
the child; the CPU-time limit is the child's own `RLIMIT_CPU`.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import protocol
from .errors import (
    ExternalData,
    ForbiddenOperation,
    LimitExceeded,
    ModelArtifactError,
    ModelRaised,
    SandboxCrashed,
    SandboxError,
    memory_message,
    time_message,
)

ROOT = Path(__file__).resolve().parents[2]
BOOT = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from inference.sandbox.child import main; sys.exit(main())"
CPU_MARGIN = 30  # CPU seconds the interpreter's start (imports) may use besides the model
START_SECONDS = 120  # wall clock for the child to start and confine itself, before the model's limit counts
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 8 * 2**30
    seconds: float = 600
    threads: int = 1
    user: str | None = "nobody"  # dropped to when the worker runs as root
    scratch_root: str | None = None  # where the per-job scratch directories go (default: the temp dir)

    @property
    def cpu_seconds(self):
        return int(self.seconds * max(1, self.threads) + CPU_MARGIN)


REPLY_ERRORS = {"forbidden": ForbiddenOperation, "external": ExternalData, "invalid": ModelArtifactError}


class Sandbox:
    """A started child holding one loaded model; `predict(batch, seed)` as `runner.LoadedModel`."""

    format = ""

    def __init__(self, path, fmt, *, limits, device="cpu", sampling=None):
        self.path = Path(path)
        self.format = fmt
        self.sampling = sampling  # a `sampling.Sampling` for a noise predictor: the child runs the loop
        self.limits = limits
        self.requested_device = device
        self.device = device
        self.parameter_count = None
        self.confinement = []
        self.process = None
        self.cause = None  # "time" | "memory", set by the watchdog when it kills the child
        self._stopped = threading.Event()
        self.started_at = None

    # ------------------------------------------------------------------ life

    def __enter__(self):
        if self.process is not None:  # started already (`start()` then `with`)
            return self
        try:
            self.start()
        except BaseException:
            self.close()  # a refused model: the child has exited; its directory goes too
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        self.workdir = Path(tempfile.mkdtemp(prefix="medgen-sandbox-", dir=self.limits.scratch_root))
        self.scratch = self.workdir / "scratch"
        self.scratch.mkdir(mode=0o700)
        self.stderr_path = self.workdir / "stderr.log"
        os.chmod(self.workdir, 0o711)  # the child (another user) must reach its scratch, not read the log
        config = {
            "model_path": str(self.path.resolve()),
            "format": self.format,
            "device": self.requested_device,
            "scratch": str(self.scratch),
            "memory_bytes": int(self.limits.memory_bytes),
            "cpu_seconds": self.limits.cpu_seconds,
            "threads": int(self.limits.threads),
            "user": self.limits.user if os.geteuid() == 0 else None,
            "env": self._environment(),
            "sampling": self.sampling.as_dict() if self.sampling is not None else None,
        }
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-c", BOOT, json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=self.scratch,
                env=config["env"],
                close_fds=True,
            )
        self.started_at = time.monotonic()
        self.deadline = self.started_at + START_SECONDS
        self._watchdog = threading.Thread(target=self._watch, name=f"sandbox-{self.process.pid}", daemon=True)
        self._watchdog.start()
        header, _ = self._receive()  # "confined": from now on the model's own time counts
        self.deadline = time.monotonic() + self.limits.seconds
        self.confinement = header.get("confinement", [])
        header, _ = self._receive()  # "loaded"
        self.device = header.get("device", self.device)
        self.parameter_count = header.get("parameter_count")
        return self

    def _environment(self):
        threads = str(int(self.limits.threads))
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.scratch),
            "TMPDIR": str(self.scratch),
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
        }
        if "CUDA_VISIBLE_DEVICES" in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        return env

    def close(self):
        self._stopped.set()
        process = self.process
        if process is not None and process.poll() is None:
            try:
                protocol.send(process.stdin, {"op": "close"})
                process.stdin.close()
                process.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self._kill()
        if process is not None:
            for stream in (process.stdin, process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        if getattr(self, "workdir", None) is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill(self):
        try:
            self.process.kill()
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def _watch(self):
        """Kill the child past the wall-clock limit or when its resident memory passes the limit."""
        statm = f"/proc/{self.process.pid}/statm"
        while not self._stopped.wait(0.1):
            if self.process.poll() is not None:
                return
            if time.monotonic() > self.deadline:
                self.cause = "time"
                self._kill()
                return
            try:
                with open(statm) as handle:
                    resident = int(handle.read().split()[1]) * PAGE
            except (OSError, ValueError, IndexError):
                continue
            if resident > self.limits.memory_bytes:
                self.cause = "memory"
                self._kill()
                return

    # ------------------------------------------------------------------ talking

    def predict(self, batch, seed=None, seeds=None):
        """One batch through the model; a noise predictor's sampling loop takes each item's seed (`seeds`)."""
        if self.process is None or self.process.poll() is not None:
            raise self._death()
        header = {"op": "predict", "seed": seed}
        if seeds is not None:
            header["seeds"] = [int(s) for s in seeds]
        try:
            protocol.send(self.process.stdin, header, [batch])
        except (BrokenPipeError, OSError, ValueError):
            raise self._death() from None
        _, arrays = self._receive()
        return arrays[0]

    def probe(self, *, write=(), read=(), connect=()):
        """Ask the confined child to try what a hostile model would (a self-test of the confinement):
        {"uid": …, "write": {path: outcome}, "read": {…}, "connect": {"host:port": outcome}, "socket": outcome}."""
        protocol.send(
            self.process.stdin, {"op": "probe", "write": list(write), "read": list(read), "connect": list(connect)}
        )
        header, _ = self._receive()
        return header["probe"]

    def synchronize(self):
        """A reply comes only once the child copied its output off the device."""

    def _receive(self):
        try:
            header, arrays = protocol.receive(self.process.stdout, max_bytes=self.limits.memory_bytes)
        except protocol.ProtocolError:
            raise self._death() from None
        if header.get("ok"):
            return header, arrays
        kind, message = header.get("error"), header.get("message", "")
        if kind == "memory":
            raise LimitExceeded(memory_message(self.limits.memory_bytes))
        if kind in REPLY_ERRORS:
            raise REPLY_ERRORS[kind](message)
        if kind == "sandbox":
            raise SandboxError(message)  # the sandbox itself failed (confinement), not the model
        raise ModelRaised(message)

    def _death(self):
        """The error for a child that is gone (or going): the cause if known, else its signal or status."""
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
        code = self.process.returncode
        if self.cause == "time":
            return LimitExceeded(time_message(self.limits.seconds))
        if self.cause == "memory":
            return LimitExceeded(memory_message(self.limits.memory_bytes))
        if code == -signal.SIGXCPU:  # RLIMIT_CPU
            return LimitExceeded(time_message(self.limits.seconds))
        if code is not None and code < 0:
            return SandboxCrashed(f"The model crashed (signal {signal.Signals(-code).name}).")
        tail = self.stderr_tail()
        return SandboxCrashed(f"The sandbox exited with status {code}" + (f": {tail}" if tail else "."))

    def stderr_tail(self, n=300):
        try:
            text = self.stderr_path.read_text(errors="replace").strip()
        except OSError:
            return ""
        return text.splitlines()[-1][-n:] if text else ""
