"""The arrays a study image can show, and the check that every run of a study has a showable output of a case
(shared by the regular freeze, `build`, and the probe-mode one, `probe_build`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import blinding
from ..models import ImageSource


@dataclass
class Source:
    """An array a study image shows: loaded when blinded (twice at most: its step, then its image)."""

    load: Callable
    sha256: str
    case: object
    kind: str  # ImageSource
    run: object = None


def synthetic_sources(builder, case, reference, runs, outputs) -> tuple[dict | None, str]:
    """({run pk: Source of its output of `case`}, "") when every run has an output of the reference's shape that
    the builder can show; else (None, why) for the first run without one. `outputs`: (run pk, case pk) → output."""
    sources = {}
    for run in runs:
        output = outputs.get((run.pk, case.pk))
        if output is None:
            return None, f"{case.case_id}: no output from {run}"
        if reference is None or list(output.shape[1:]) != list(reference.shape[1:]):
            return None, f"{case.case_id}: {run}'s output has another shape than the reference"
        try:
            builder.check(output.load)
        except (blinding.NotShowable, ValueError) as exc:
            return None, f"{case.case_id}: {run}'s output is not showable ({exc})"
        sources[run.pk] = Source(output.load, output.content_sha256, case, ImageSource.SYNTHETIC, run)
    return sources, ""
