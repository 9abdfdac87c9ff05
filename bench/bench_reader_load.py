"""40 concurrent readers answering a 100-item reader study over HTTP, on PostgreSQL.

Builds, in a throw-away PostgreSQL database, a task with 2D 128×128 cases and one succeeded
run, and a visual Turing study of it (items_per_model 50, real_ratio 1.0: 100 items) started
with `readerstudy.services.build.freeze`, with every reader account invited. The site is served by
waitress (`manage.py serve --no-worker --threads N`) on loopback. Each reader logs in (the
login form, then the session cookie) and, on one keep-alive connection, does what the
browser's workspace does for each item: fetch the image's header and then its data, submit
the answer (`POST /api/read/<uid>/answers/` with a fresh idempotency key), which answers
with the next item. Latency of "submit and get the next item" is measured on the client and,
from the `Server-Timing` header, on the server; the image requests are measured apart.

Readers look at each image before answering: an exponential think time, 1 s on average
(`--think-ms`; human readers of a Turing test take several seconds). With `--think-ms 0` the
40 readers send back to back and the run measures the server's capacity instead: the latency
is then 40 / throughput (Little's law) whatever the submit path does.

A second pass reads with a few more readers who send every answer twice with the same key:
one after the other on the same connection (a retry after a lost response), or at the same
time on two connections (a double click racing itself).

The agreement check is the exact count: afterwards the database must hold one answer per
assignment (readers × items rows, as many distinct assignments, none without an answer)
and every session must be finished. Target: submit p95 ≤ 50 ms (client side), printed.

There is no peer library for serving a reader study. The peer is the uncontended path on the same
server: one more reader alone, answering the same study back to back before the crowd arrives;
the ratio printed is its submit p50 over the crowd's (below 1: what the concurrency costs). The
whole thing runs quietly and then under 2 busy cores (bench/load.py), each pass with readers of
its own; the run fails (exit 1) when the database's count of answers is not exact.

    .venv/bin/python bench/bench_reader_load.py [--quick] [--readers 40] [--items 100] [--threads 4] [--think-ms 1000]
Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth; --postgres to change); the
database `medgen_bench_reader_<pid>` is created and dropped at the end.
"""

import argparse
import gc
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Measure, run_quiet_and_loaded  # noqa: E402

PASSWORD = "reader-bench-pass-123"
_APP = re.compile(r"app;dur=([\d.]+)")
_DB = re.compile(r"db;dur=([\d.]+)")
_QUERIES = re.compile(r'desc="(\d+) queries"')


# --- The database and the data ----------------------------------------------------------


def create_database(server, name):
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_database(server, name):
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build(groups, n_items, n_cases, size):
    """The task, its run, the reader accounts and the started study; returns (study, {group: usernames}).

    `groups` maps a name prefix to a number of readers."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from tests.support.study_data import make_study, make_study_task

    per_model = (n_items + 1) // 2
    real_ratio = (n_items - per_model) / per_model
    task, runs = make_study_task(n_cases=n_cases, shape=(1, size, size), n_runs=1)
    User = get_user_model()
    encoded = make_password(PASSWORD)  # one hash for all: 40 PBKDF2 runs would take longer than the load
    names = [f"{prefix}{i:03d}" for prefix, count in groups.items() for i in range(count)]
    User.objects.bulk_create(User(username=name, password=encoded) for name in names)
    users = list(User.objects.filter(username__in=names).order_by("username"))
    study = make_study(task, runs, design="turing", readers=users, items_per_model=per_model,
                       real_ratio=real_ratio, seed=11)  # fmt: skip
    return study, {prefix: [u.username for u in users if u.username.startswith(prefix)] for prefix in groups}


def count_answers(study, usernames):
    """The agreement check, from the database: answers, distinct assignments, unanswered, finished."""
    from django.db.models import Count

    from readerstudy.models import Answer, Assignment, ReaderSession

    sessions = ReaderSession.objects.filter(study=study, reader__username__in=usernames)
    answers = Answer.objects.filter(session__in=sessions).order_by()
    per_session = dict(answers.values_list("session_id").annotate(n=Count("id")))
    return {
        "sessions": sessions.count(),
        "assignments": Assignment.objects.filter(session__in=sessions).count(),
        "answers": answers.count(),
        "distinct_assignments": answers.values("assignment_id").distinct().count(),
        "unanswered": Assignment.objects.filter(session__in=sessions, answer__isnull=True).count(),
        "finished": sessions.filter(finished_at__isnull=False).count(),
        "answered_matches": all(
            s.answered == s.total == per_session.get(s.pk, 0) for s in sessions.only("pk", "answered", "total")
        ),
    }


# --- HTTP clients -----------------------------------------------------------------------


class Reader:
    """One reader's browser: a keep-alive connection and its cookies."""

    def __init__(self, port, username):
        self.username = username
        self.cookies = {}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.perf_counter()
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                for key, morsel in SimpleCookie(value).items():
                    self.cookies[key] = morsel.value
        timing = response.getheader("Server-Timing") or ""
        app, db, queries = _APP.search(timing), _DB.search(timing), _QUERIES.search(timing)
        sample = (
            elapsed,
            float(app.group(1)) if app else float("nan"),
            float(db.group(1)) if db else float("nan"),
            int(queries.group(1)) if queries else -1,
        )
        return response.status, data, sample

    def login(self):
        status, _, _ = self.request("GET", "/accounts/login/")
        assert status == 200, f"login page: {status}"
        form = urlencode({"username": self.username, "password": PASSWORD,
                          "csrfmiddlewaretoken": self.cookies["csrftoken"]})  # fmt: skip
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, _ = self.request("POST", "/accounts/login/", form, headers)
        assert status == 302 and "sessionid" in self.cookies, f"{self.username} could not log in ({status})"

    def get_json(self, path):
        status, data, sample = self.request("GET", path)
        assert status == 200, f"GET {path}: {status} {data[:200]!r}"
        return json.loads(data), sample

    def submit(self, uid, token, key, answer):
        body = json.dumps({"item": token, "answer": answer, "key": key})
        headers = {"Content-Type": "application/json", "X-CSRFToken": self.cookies["csrftoken"]}
        status, data, sample = self.request("POST", f"/api/read/{uid}/answers/", body, headers)
        assert status == 200, f"{self.username} POST answer: {status} {data[:300]!r}"
        return json.loads(data), sample

    def close(self):
        self.connection.close()


class Recorder:
    """Samples (client ms, server ms, db ms, queries) per kind of request, from every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.samples = {}

    def add(self, kind, samples):
        with self.lock:
            self.samples.setdefault(kind, []).extend(samples)

    def stats(self, kind):
        rows = np.array(self.samples.get(kind, []), dtype=float).reshape(-1, 4)
        if not len(rows):
            return None

        def pct(column, q):
            values = rows[:, column][~np.isnan(rows[:, column])]
            return float(np.percentile(values, q)) if len(values) else float("nan")

        return {
            "n": len(rows),
            "client": [pct(0, q) for q in (50, 95, 99, 100)],
            "server": [pct(1, q) for q in (50, 95, 99, 100)],
            "db": [pct(2, q) for q in (50, 95, 99)],
            "queries": sorted({int(q) for q in rows[:, 3]}),
        }


def answer_for(rng):
    return {"call": rng.choice(["real", "synthetic"]), "confidence": rng.randint(1, 5)}


def fetch_images(reader, item, local):
    """What the workspace loads for an item: each image's header (unless the item carries it), then its data."""
    spent = 0.0
    for image in item["images"]:
        header = image.get("header")
        if header is None:
            header, sample = reader.get_json(image["header_url"])
            local["header"].append(sample)
            spent += sample[0]
        status, data, sample = reader.request("GET", header["data_url"])
        assert status == 200 and len(data) == 4 * header["rows"] * header["columns"], f"image data: {status}"
        local["data"].append(sample)
        spent += sample[0]
    local["images"].append((spent, float("nan"), float("nan"), -1))


def read_study(reader, uid, recorder, think_ms, seed):
    """Answer every item of the reader's session, one submit per item; returns the answers given."""
    rng = random.Random(seed)
    local = {"state": [], "header": [], "data": [], "images": [], "submit": []}
    if think_ms:
        time.sleep(rng.uniform(0, think_ms / 1000))  # readers do not all open the study in the same millisecond
    state, sample = reader.get_json(f"/api/read/{uid}/state/")
    local["state"].append(sample)
    given = 0
    while not state["finished"]:
        item = state["item"]
        fetch_images(reader, item, local)
        if think_ms:
            time.sleep(rng.expovariate(1000 / think_ms))
        done = state["done"]
        state, sample = reader.submit(uid, item["token"], uuid.uuid4().hex, answer_for(rng))
        local["submit"].append(sample)
        given += 1
        assert state["done"] == done + 1, f"{reader.username}: done {done} → {state['done']}"
        assert state["finished"] or state["item"]["token"] != item["token"], "the same item came back"
    assert state["done"] == state["total"] == given
    for kind, samples in local.items():
        recorder.add(kind, samples)
    return given


def _submit_into(results, slot, client, *args):
    results[slot] = client.submit(*args)


def read_study_twice(reader, twin, uid, recorder, seed, race):
    """Every answer sent twice with one key: in turn on one connection (retry) or at once on two (race)."""
    rng = random.Random(seed)
    local = {"header": [], "data": [], "images": [], "submit": [], "copy": []}
    state, _ = reader.get_json(f"/api/read/{uid}/state/")
    while not state["finished"]:
        item = state["item"]
        fetch_images(reader, item, local)
        key, answer = uuid.uuid4().hex, answer_for(rng)
        if race:
            results = [None, None]
            threads = [
                threading.Thread(target=_submit_into, args=(results, i, client, uid, item["token"], key, answer))
                for i, client in enumerate((reader, twin))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert None not in results, f"{reader.username}: a racing copy failed"
        else:
            results = [reader.submit(uid, item["token"], key, answer), reader.submit(uid, item["token"], key, answer)]
        (first, first_sample), (second, second_sample) = results
        local["submit"].append(first_sample)
        local["copy"].append(second_sample)
        token = lambda s: s["item"] and s["item"]["token"]  # noqa: E731
        assert (first["done"], token(first)) == (second["done"], token(second)), "the two copies disagree"
        assert first["done"] == state["done"] + 1, f"{reader.username}: a copy was counted twice"
        state = first
    for kind, samples in local.items():
        recorder.add(f"dup-{kind}", samples)


def run_threads(targets):
    errors = []

    def guarded(target):
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 — reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.monotonic() - started


def cpu_seconds(pid):
    """User + system CPU seconds of a process (Linux /proc), or nan elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def machine_busy():
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values) - values[3] - values[4], sum(values)
    except (OSError, ValueError, IndexError):
        return float("nan"), float("nan")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(port, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/accounts/login/")
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the server on port {port} did not answer within {timeout:.0f} s")


# --- Main -------------------------------------------------------------------------------


def fmt(values):
    return " ".join(f"{v:7.1f}" for v in values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 readers × 20 items, 300 ms think time, 2 retriers")
    parser.add_argument("--busy", type=int, default=2, help="busy cores for the loaded pass (default 2)")
    parser.add_argument("--readers", type=int, default=None, help="concurrent readers (default 40)")
    parser.add_argument("--items", type=int, default=None, help="items per reader (default 100)")
    parser.add_argument("--threads", type=int, default=4,
                        help="waitress threads (default 4: more only wait for the GIL on 2 cores)")  # fmt: skip
    parser.add_argument("--dup-readers", type=int, default=None, help="readers of the duplicate-submit pass")
    parser.add_argument("--think-ms", type=float, default=None,
                        help="mean think time per item, exponential (default 1000; 0: back to back)")  # fmt: skip
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (2D, float32)")
    parser.add_argument("--target-ms", type=float, default=50.0, help="submit p95 target, client side")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--cache-url", default=os.environ.get("CACHE_URL", ""),
                        help="the server's CACHE_URL, e.g. redis://127.0.0.1:6379/1 (default: $CACHE_URL)")  # fmt: skip
    args = parser.parse_args()
    defaults = (10, 20, 2, 300.0) if args.quick else (40, 100, 4, 1000.0)
    for key, default in zip(("readers", "items", "dup_readers", "think_ms"), defaults, strict=True):
        if getattr(args, key) is None:
            setattr(args, key, default)

    per_model = (args.items + 1) // 2
    n_cases = max(50, args.items)  # reals come from other cases than the synthetic ones
    name = f"medgen_bench_reader_{os.getpid()}"
    data_dir = tempfile.mkdtemp(prefix="medgen-bench-reader-")
    env = dict(os.environ, DATABASE_URL=f"{args.postgres}/{name}", MEDGEN_DATA_DIR=data_dir, DEBUG="0",
               CELERY_BROKER_URL="memory://", DJANGO_SETTINGS_MODULE="medgen_site.settings",
               CACHE_URL=args.cache_url, SECRET_KEY=os.environ.get("SECRET_KEY", "medgen-bench-only"),
               MEDGEN_SERVER_TIMING="all")  # fmt: skip
    os.environ.update(env)
    create_database(args.postgres, name)
    server = None
    clients = {}
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        started = time.monotonic()
        call_command("migrate", verbosity=0)
        groups = {}
        for tag in ("q", "l"):  # each pass, quiet and loaded, has readers of its own
            groups.update({f"reader-{tag}": args.readers, f"solo-{tag}": 1, f"retry-{tag}": args.dup_readers})
        study, names = build(groups, args.items, n_cases, args.size)
        n_items = study.items.count()
        print(f"PostgreSQL {name}: {n_cases} cases of {args.size}×{args.size} float32, 1 run, Turing study "
              f"(items_per_model {per_model}) with {n_items} items, {args.readers} + 1 + {args.dup_readers} "
              f"readers per pass; built in {time.monotonic() - started:.1f} s")  # fmt: skip
        connections.close_all()

        port = free_port()
        log = open(Path(data_dir) / "serve.log", "w")
        command = [sys.executable, "manage.py", "serve", "--no-worker", "--port", str(port),
                   "--threads", str(args.threads)]  # fmt: skip
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
        wait_for_server(port)
        sessions = f"sessions cached in {args.cache_url}" if args.cache_url else "sessions in the database"
        print(f"waitress --threads {args.threads}, think time {args.think_ms:.0f} ms, {sessions}")
        uid = study.uid

        def one_pass(tag):
            readers, (solo,), dup_readers = names[f"reader-{tag}"], names[f"solo-{tag}"], names[f"retry-{tag}"]
            clients.update({username: Reader(port, username) for username in readers + [solo]})
            started = time.monotonic()
            run_threads([clients[u].login for u in readers + [solo]])
            print(f"{len(readers) + 1} logins (PBKDF2) in {time.monotonic() - started:.1f} s")

            # The peer: one reader alone, back to back, before the crowd.
            solo_recorder = Recorder()
            read_study(clients[solo], uid, solo_recorder, 0, seed=999)
            recorder = Recorder()
            # The clients' own garbage collection would stall all of them at once (gen-2 passes over
            # Django's and torch's objects took 70–140 ms here) and show as server latency.
            gc.collect()
            gc.freeze()
            gc.disable()
            load_before = os.getloadavg()[0]
            cpu_before, busy_before = (cpu_seconds(server.pid), cpu_seconds(os.getpid())), machine_busy()
            wall = run_threads([
                (lambda c=clients[u], i=i: read_study(c, uid, recorder, args.think_ms, seed=i))
                for i, u in enumerate(readers)
            ])  # fmt: skip
            cpu_after, busy_after = (cpu_seconds(server.pid), cpu_seconds(os.getpid())), machine_busy()
            load_after = os.getloadavg()[0]
            # The second pass logs in now: waitress closes connections idle for 120 s (channel_timeout).
            clients.update({username: Reader(port, username) for username in dup_readers})
            twins = {username: Reader(port, username) for username in dup_readers[1::2]}
            run_threads([clients[username].login for username in dup_readers])
            for username, twin in twins.items():
                twin.cookies = dict(clients[username].cookies)  # the same browser session, a second connection
            dup_wall = run_threads([
                (lambda u=u, i=i: read_study_twice(clients[u], twins.get(u), uid, recorder, seed=1000 + i,
                                                   race=u in twins))
                for i, u in enumerate(dup_readers)
            ])  # fmt: skip
            gc.enable()
            for username in readers + [solo] + dup_readers:
                clients[username].close()
            for twin in twins.values():
                twin.close()

            main_counts = count_answers(study, readers + [solo])
            dup_counts = count_answers(study, dup_readers)
            connections.close_all()

            submit, header, data, images = (recorder.stats(kind) for kind in ("submit", "header", "data", "images"))
            alone = solo_recorder.stats("submit")
            requests = sum(len(v) for k, v in recorder.samples.items() if k in ("state", "header", "data", "submit"))
            print(f"Main pass: {len(readers)} readers × {n_items} items, "
                  f"{requests} requests in {wall:.1f} s = {requests / wall:.0f} req/s, "
                  f"{submit['n'] / wall:.0f} answers/s")  # fmt: skip
            print(f"{'request':<28} {'n':>6}  {'client p50     p95     p99     max':>34}  "
                  f"{'server p50     p95     p99     max':>34}  {'db p95':>7} queries")  # fmt: skip
            for label, st in (("submit → next item (POST)", submit), ("image header (GET)", header),
                              (f"image data (GET, {args.size**2 // 256} KiB)", data),
                              ("submit, one reader alone", alone)):  # fmt: skip
                if st is None:
                    print(f"{label:<28} {0:>6}  (none: the item carries its images' headers)")
                    continue
                print(f"{label:<28} {st['n']:>6}  {fmt(st['client']):>34}  {fmt(st['server']):>34}  "
                      f"{st['db'][1]:7.1f} {','.join(map(str, st['queries']))}")  # fmt: skip
            print(f"{'image requests of an item':<28} {images['n']:>6}  {fmt(images['client']):>34}  (client, ms)")
            server_cpu, client_cpu = (after - before for after, before in zip(cpu_after, cpu_before, strict=True))
            busy = (busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1])
            print(f"CPU over the pass: server process {100 * server_cpu / wall:.0f}% of one core "
                  f"({1000 * server_cpu / requests:.1f} ms per request), these clients {100 * client_cpu / wall:.0f}%, "
                  f"machine {100 * busy:.0f}% busy of {os.cpu_count()} cores; "
                  f"load average {load_before:.1f} → {load_after:.1f}")  # fmt: skip
            dup_submit, dup_copy = recorder.stats("dup-submit"), recorder.stats("dup-copy")
            if dup_submit:
                print(f"Duplicate pass: {len(dup_readers)} readers send each answer twice with one key "
                      f"({len(dup_readers) - len(twins)} in turn, {len(twins)} racing on two connections), "
                      f"{dup_submit['n'] + dup_copy['n']} submits in {dup_wall:.1f} s; "
                      f"client p95 first {dup_submit['client'][1]:.1f} ms, "
                      f"copy {dup_copy['client'][1]:.1f} ms")  # fmt: skip

            def counted(counts, n_readers):
                """(what the database holds, what it must hold): answers, distinct assignments, assignments,
                unanswered, finished sessions, sessions, answered == total == rows per session."""
                want = n_readers * n_items
                return (
                    [counts["answers"], counts["distinct_assignments"], counts["assignments"], counts["unanswered"],
                     counts["finished"], counts["sessions"], counts["answered_matches"]],
                    [want, want, want, 0, n_readers, n_readers, True],
                )  # fmt: skip

            ours_main, want_main = counted(main_counts, len(readers) + 1)
            ours_dup, want_dup = counted(dup_counts, len(dup_readers))
            p95 = submit["client"][1]
            return [
                Measure(
                    f"submit → next item, client p50, {len(readers)} readers",
                    submit["client"][0] / 1000,
                    alone["client"][0] / 1000,
                    ours_main + ours_dup,
                    want_main + want_dup,
                    rtol=0.0,
                    peer_name="one reader alone",
                    note=f"exact counts of answers in the database (both passes); crowd p95 {p95:.1f} ms "
                    f"(target ≤ {args.target_ms:.0f} ms: {'met' if p95 <= args.target_ms else 'MISSED'})",
                )  # fmt: skip
            ]

        tags = iter(("q", "l"))
        run_quiet_and_loaded(lambda: one_pass(next(tags)), busy=args.busy)
        return 0
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        try:
            from django.db import connections

            if args.cache_url:  # the readers' sessions, cached in the shared cache: take them out too
                from django.core.cache import cache

                cache.delete_many([f"django.contrib.sessions.cached_db{c.cookies['sessionid']}"
                                   for c in clients.values() if "sessionid" in c.cookies])  # fmt: skip
            connections.close_all()
        except Exception:  # noqa: BLE001 — Django may not be set up yet
            pass
        drop_database(args.postgres, name)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
