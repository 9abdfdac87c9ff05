"""Per-reader item order: a seeded shuffle, with repeats kept apart from their originals (no Django)."""

import numpy as np

#: A repeated item comes at least this many positions after its original (fewer if the study is short).
MIN_REPEAT_GAP = 5


def reader_order(item_ids, repeats, seed, min_gap=MIN_REPEAT_GAP):
    """The order one reader sees.

    `item_ids`: the study's non-repeat items (regular and attention checks).
    `repeats`: {repeat item id: original item id}.
    Returns a list of every item id once. The shuffle is `numpy.random.default_rng(seed)`,
    so the same seed gives the same order; each repeat is inserted at a random position at
    least `min_gap` after its original, so a reader meets the original first and not just
    before its repeat.
    """
    rng = np.random.default_rng(seed)
    order = [item_ids[i] for i in rng.permutation(len(item_ids))]
    for repeat_id, original_id in sorted(repeats.items()):
        start = order.index(original_id) + 1
        gap = min(min_gap, max(0, len(order) - start))
        low = start + gap
        position = int(rng.integers(low, len(order) + 1)) if low <= len(order) else len(order)
        order.insert(position, repeat_id)
    return order


def swaps(count, seed):
    """Left/right randomisation for pairwise items: `count` booleans from the reader's seed."""
    return [bool(v) for v in np.random.default_rng([seed, 1]).integers(0, 2, size=count)]
