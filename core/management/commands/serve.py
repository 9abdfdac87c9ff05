"""Start the web server and, unless told otherwise, a Celery worker (with the beat scheduler).

This is the embedded default's one process to run: `python manage.py serve`. In production
run the WSGI app under a server of your choice and Celery workers on their own machines.
"""

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from django.core.wsgi import get_wsgi_application
from waitress import serve


class Command(BaseCommand):
    help = "Serve the site (waitress) and start a Celery worker for both queues."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--threads", type=int, default=8)
        parser.add_argument("--no-worker", action="store_true", help="Workers run elsewhere.")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=min(4, os.cpu_count() or 1),
            help="Worker processes (default: one per core, at most 4; each takes cores ÷ processes torch threads).",
        )

    def handle(self, *args, host, port, threads, no_worker, concurrency, **options):
        application = get_wsgi_application()
        worker = None
        if not no_worker:
            beat_file = settings.DATA_DIR / "celerybeat-schedule"
            command = [
                sys.executable, "-m", "celery", "-A", "medgen_site", "worker", "--beat",
                "--schedule", str(beat_file), "-Q", "inference,metrics", "--concurrency", str(concurrency),
                "--loglevel", "INFO", "--without-gossip", "--without-mingle",
            ]  # fmt: skip
            worker = subprocess.Popen(command, start_new_session=True)
            self.stdout.write(f"Celery worker started (pid {worker.pid}) on queues inference, metrics")

        def stop(*_):
            if worker and worker.poll() is None:
                worker.terminate()  # the main process only: a warm shutdown that lets its pool finish
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
            sys.exit(0)

        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(f"MedGen Eval at http://{host}:{port}/")
        try:
            serve(
                application,
                host=host,
                port=port,
                threads=threads,
                ident="medgen",
                max_request_body_size=settings.MEDGEN_MAX_UPLOAD_BYTES + (1 << 20),
            )
        except KeyboardInterrupt:
            pass
        finally:
            stop()
