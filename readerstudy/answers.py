"""What a valid answer is, per design, and how it reads for the analysis (no Django).

Answers arrive as JSON from the reader's browser:

    turing         {"call": "real" | "synthetic", "confidence": 1 … 5}
    likert         {"scores": {scale key: 1 … 5, …}}           every scale of the study
    pairwise       {"choice": "left" | "right" | "none"}       "none" only if the study allows it
    hallucination  {"none": true} | {"marks": [mark, …]}       at least one mark, or none confirmed
                   mark: {"type": "point", "slice": k, "points": [[x, y]]}
                       | {"type": "box", "slice": k, "points": [[x0, y0], [x1, y1]]}   (pixels)
                   with "rating": 1 … 5 (the reader's confidence) on every mark of a probe-mode study
                   (`ratings=True`; optional otherwise)

`validate` returns the cleaned answer or raises `InvalidAnswer` with a message for the reader;
`partial=True` (autosaved drafts) accepts incomplete answers but still rejects wrong values.
"""

import math

from core.errors import InvalidInput

MAX_MARKS = 50


class InvalidAnswer(InvalidInput):
    """An answer the study's design does not accept; the message is for the reader (400)."""


def _rating(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise InvalidAnswer(f"{name} must be an integer from 1 to 5.")
    return value


def validate(design, value, *, scales=(), allow_no_preference=False, shape=None, partial=False, ratings=False):
    if not isinstance(value, dict):
        raise InvalidAnswer("The answer must be a JSON object.")
    if design == "turing":
        return _turing(value, partial)
    if design == "likert":
        return _likert(value, [s["key"] for s in scales], partial)
    if design == "pairwise":
        return _pairwise(value, allow_no_preference, partial)
    if design == "hallucination":
        return _hallucination(value, shape, partial, ratings)
    raise InvalidAnswer(f"Unknown design {design!r}.")


def _turing(value, partial):
    cleaned = {}
    if "call" in value:
        if value["call"] not in ("real", "synthetic"):
            raise InvalidAnswer("Call the image 'real' or 'synthetic'.")
        cleaned["call"] = value["call"]
    if "confidence" in value:
        cleaned["confidence"] = _rating(value["confidence"], "Confidence")
    if not partial and set(cleaned) != {"call", "confidence"}:
        raise InvalidAnswer("Give a call (real or synthetic) and a confidence from 1 to 5.")
    return cleaned


def _likert(value, keys, partial):
    scores = value.get("scores", {})
    if not isinstance(scores, dict):
        raise InvalidAnswer("'scores' must map each scale to a rating.")
    unknown = set(scores) - set(keys)
    if unknown:
        raise InvalidAnswer(f"Unknown scale(s): {', '.join(sorted(unknown))}.")
    cleaned = {key: _rating(scores[key], f"The rating for {key}") for key in keys if key in scores}
    if not partial and len(cleaned) != len(keys):
        missing = [key for key in keys if key not in cleaned]
        raise InvalidAnswer(f"Rate every scale; missing: {', '.join(missing)}.")
    return {"scores": cleaned}


def _pairwise(value, allow_no_preference, partial):
    choice = value.get("choice")
    if choice is None and partial:
        return {}
    allowed = ("left", "right", "none") if allow_no_preference else ("left", "right")
    if choice not in allowed:
        raise InvalidAnswer(f"Choose {' or '.join(repr(a) for a in allowed)}.")
    return {"choice": choice}


def _hallucination(value, shape, partial, ratings=False):
    if value.get("none") is True:
        if value.get("marks"):
            raise InvalidAnswer("Either mark structures or confirm there are none, not both.")
        return {"none": True}
    marks = value.get("marks", [])
    if not isinstance(marks, list) or len(marks) > MAX_MARKS:
        raise InvalidAnswer(f"'marks' must be a list of at most {MAX_MARKS} marks.")
    cleaned = [_mark(mark, shape) for mark in marks]
    if not cleaned and not partial:
        raise InvalidAnswer("Mark at least one structure, or confirm there are none.")
    if ratings and not partial and any("rating" not in mark for mark in cleaned):
        raise InvalidAnswer("Rate every mark from 1 (unsure) to 5 (sure).")
    return {"marks": cleaned}


def _mark(mark, shape):
    if not isinstance(mark, dict) or mark.get("type") not in ("point", "box"):
        raise InvalidAnswer("Each mark is a point or a box.")
    points = mark.get("points")
    expected = 1 if mark["type"] == "point" else 2
    if not isinstance(points, list) or len(points) != expected:
        raise InvalidAnswer(f"A {mark['type']} has {expected} point(s).")
    slices, rows, cols = (1, *shape[-2:]) if shape and len(shape) == 2 else (tuple(shape) if shape else (None,) * 3)
    index = mark.get("slice", 0)
    if isinstance(index, bool) or not isinstance(index, int) or (slices is not None and not 0 <= index < slices):
        raise InvalidAnswer("A mark's slice is outside the image.")
    cleaned = []
    for point in points:
        if not (isinstance(point, list) and len(point) == 2 and all(isinstance(v, int | float) for v in point)):
            raise InvalidAnswer("A mark's points are [x, y] pixel pairs.")
        try:
            x, y = float(point[0]), float(point[1])
        except OverflowError:
            raise InvalidAnswer("A mark lies outside the image.") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidAnswer("A mark lies outside the image.")
        if cols is not None and not (0 <= x <= cols and 0 <= y <= rows):
            raise InvalidAnswer("A mark lies outside the image.")
        cleaned.append([round(x, 2), round(y, 2)])
    out = {"type": mark["type"], "slice": index, "points": cleaned}
    if mark.get("rating") is not None:
        out["rating"] = _rating(mark["rating"], "A mark's rating")
    return out


def passes_attention(design, answer, expected, swapped=False):
    """Whether an attention check's answer is the one any attentive reader gives."""
    if design == "turing":
        return answer.get("call") == expected.get("call")
    if design == "likert":
        return all(score <= expected.get("max_score", 2) for score in answer.get("scores", {}).values())
    if design == "pairwise":
        # expected {"winner": "a"}: image A is the intact one; the reader saw it on the right if swapped.
        choice = answer.get("choice")
        side_of_a = "right" if swapped else "left"
        return choice == (side_of_a if expected.get("winner") == "a" else ("left" if side_of_a == "right" else "right"))
    if design == "hallucination":
        return bool(answer.get("marks"))
    return False
