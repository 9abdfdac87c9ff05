"""A task's leaderboard from the cache: keyed by the data version (`queries.data_version`), so a board
is rebuilt only when a run, a result or the task's settings changed, and a page view costs the same
for 3 runs or 300. Boards live in Django's cache (shared between processes with a shared backend)
and, in front of it, in a small per-process memo.
"""

import hashlib
import threading
from collections import OrderedDict

from django.core.cache import cache

from .queries import data_version
from .shapes import RANKING_METHODS
from .standings import compute

CACHE_SECONDS = 24 * 3600

# Boards built in this process, by cache key: a hit costs no unpickling of a 300-row board.
# The key holds the data version, so an entry is never stale, only unused; the oldest go first.
MEMO_SIZE = 32
_memo = OrderedDict()
_memo_lock = threading.Lock()


def build(task, *, method=None, chosen=None, version=None, private=False):
    """The leaderboard of `task`, from the cache when nothing changed since it was built.

    `method` is "primary" or "mean_rank" (default: the task's); `chosen` lists the column keys
    whose ranks are averaged for the mean rank (default: every ranked pixel and feature column);
    `private` (organisers) includes the runs of phases whose leaderboard is still private.
    """
    method = method if method in RANKING_METHODS else (task.ranking if task.ranking in RANKING_METHODS else "primary")
    version = version or data_version(task)
    chosen_key = ",".join(sorted(chosen)) if chosen else ""
    digest = hashlib.sha256(chosen_key.encode()).hexdigest()[:12]
    key = f"leaderboard:{task.pk}:{version}:{method}:{digest}:{'private' if private else 'public'}"
    with _memo_lock:
        board = _memo.get(key)
        if board is not None:
            _memo.move_to_end(key)
            return board
    board = cache.get(key)  # another process may have built it (with a shared cache backend)
    if board is None:
        board = compute(task, method=method, chosen=chosen, private=private)
        board.version = version
        cache.set(key, board, CACHE_SECONDS)
    with _memo_lock:
        _memo[key] = board
        while len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)
    return board
