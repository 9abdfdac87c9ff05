"""A small closed-loop HTTP load generator for the benchmarks (no third-party load tool).

`clients` threads each keep one keep-alive connection to the server on loopback and send
their requests back to back for `seconds` (or `requests` each). For every response it records
the client-side latency and, from the `Server-Timing` header our middleware sets, the server
time and the number of SQL queries.
"""

import http.client
import re
import threading
import time
from dataclasses import dataclass, field

import numpy as np

_APP = re.compile(r"app;dur=([\d.]+)")
_QUERIES = re.compile(r'desc="(\d+) queries"')


@dataclass
class Sample:
    path: str
    status: int
    client_ms: float
    server_ms: float | None
    queries: int | None


@dataclass
class LoadResult:
    samples: list = field(default_factory=list)
    seconds: float = 0.0

    def for_path(self, prefix):
        return [s for s in self.samples if s.path.startswith(prefix)]

    def summary(self, prefix=""):
        chosen = self.for_path(prefix)
        client = np.array([s.client_ms for s in chosen])
        server = np.array([s.server_ms for s in chosen if s.server_ms is not None])
        queries = sorted({s.queries for s in chosen if s.queries is not None})
        return {
            "n": len(chosen),
            "errors": sum(s.status >= 400 for s in chosen),
            "client_p50": float(np.percentile(client, 50)) if len(client) else float("nan"),
            "client_p95": float(np.percentile(client, 95)) if len(client) else float("nan"),
            "server_p50": float(np.percentile(server, 50)) if len(server) else float("nan"),
            "server_p95": float(np.percentile(server, 95)) if len(server) else float("nan"),
            "server_max": float(server.max()) if len(server) else float("nan"),
            "queries": queries,
            "rps": len(chosen) / self.seconds if self.seconds else float("nan"),
        }


def run(host, port, paths, *, clients=8, seconds=10.0, headers=None):
    """Each client cycles through `paths` (offset by its index) until `seconds` have passed."""
    result = LoadResult()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index):
        connection = http.client.HTTPConnection(host, port, timeout=60)
        mine = []
        i = index
        while time.monotonic() < deadline:
            path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            timing = response.getheader("Server-Timing") or ""
            app, queries = _APP.search(timing), _QUERIES.search(timing)
            mine.append(
                Sample(
                    path,
                    response.status,
                    elapsed,
                    float(app.group(1)) if app else None,
                    int(queries.group(1)) if queries else None,
                )
            )
        connection.close()
        with lock:
            result.samples.extend(mine)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result


def wait_for_server(host, port, path="/", timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection(host, port, timeout=5)
            connection.request("GET", path)
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the server on port {port} did not answer within {timeout:.0f} s")
