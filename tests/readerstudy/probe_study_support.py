"""A small probe world for probe-mode studies: a phantom task, two main runs that hallucinate differently
(one pastes structures everywhere: invents at the absent-truth probes; one blurs: omits the inserted lesions),
their probe runs on one probe set, scored."""

import torch

from evaluation.models import ProbeScore
from evaluation.probes import services
from tests.evaluation.probe_support import SIZE, PasteEverywhere, phantom_task
from tests.evaluation.test_probe_sets import built_probe_set, probe_run_of, valid_model


class Blur(torch.nn.Module):
    """A 9 × 9 box blur: small lesions fade below half their contrast (omissions)."""

    def forward(self, x):
        return torch.nn.functional.avg_pool2d(x, 9, stride=1, padding=4, count_include_pad=False)


def probe_world(tmp_path, n_cases=3):
    task = phantom_task(n_cases=n_cases)
    task.hidden_references = True  # a study cannot start on outputs anyone logged out can fetch
    task.save(update_fields=["hidden_references"])
    probe_set = built_probe_set(task)
    mains, probes = [], []
    for name, module in (("paste", PasteEverywhere()), ("blur", Blur())):
        model = valid_model(task, module, tmp_path, name, spatial_shape=[SIZE, SIZE])
        main, probe = probe_run_of(model, probe_set)
        services.score_probe_run(probe, n_resamples=100)  # (the job_finished receiver runs on commit)
        assert ProbeScore.objects.filter(run=probe).exists()
        mains.append(main)
        probes.append(probe)
    return task, probe_set, mains, probes
