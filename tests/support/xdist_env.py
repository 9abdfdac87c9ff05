"""Loaded with ``-p`` before pytest-django reads the settings: under pytest-xdist each test process gets its own
Redis database as Celery broker, so a worker started by one process never takes a job queued by the other.

(pytest-django already gives each xdist process its own test database, ``<name>_gw<N>``.) The broker URL's
database number counts down from the configured one: gw0 keeps it, gw1 takes the one below, and so on.
"""

import os
import re

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_broker = os.environ.get("CELERY_BROKER_URL", "")
if _worker.startswith("gw") and _broker.startswith("redis://"):
    _index = int(_worker[2:])
    _match = re.fullmatch(r"(redis://[^/]+)/(\d+)", _broker)
    _base, _db = (_match.group(1), int(_match.group(2))) if _match else (_broker.rstrip("/"), 0)
    os.environ["CELERY_BROKER_URL"] = f"{_base}/{(_db - _index) % 16}"
