"""The reader studies' part of the run page (registered with `inference.extensions` from `hooks`): for a main run
whose latest scored probe run is stochastic and was marked in a closed probe-mode study whose analysis the viewer
may read, the agreement of its SD map with the readers' marks (`probe_reading.reader_sd_agreements`, cached),
under the evaluation's probe section. Here, not in evaluation, because the marks are the reader studies'
(evaluation does not import readerstudy)."""

from django.template.loader import render_to_string

from evaluation.probes import selectors as probe_selectors
from inference.extensions import Section

from . import probe_reading


def reader_sd_section(request, run):
    if run.probe_of_id is not None:
        return None
    score = probe_selectors.run_probe_score(run)
    if score is None:
        return None
    agreement = probe_reading.reader_sd_agreements([score], request.user).get(score.run_id)
    if agreement is None:
        return None
    context = {"agreement": agreement, "probe_run": score.run_id}
    return Section(render_to_string("readerstudy/_run_reader_sd.html", context, request=request))
