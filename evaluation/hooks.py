"""How the evaluation app plugs into the platform, registered once from `AppConfig.ready`: its job kinds
(evaluations on the CPU queue, downstream training on the GPU-capable queue), the chaining that follows a
run (every run that succeeds is evaluated and, where its task declared one, trained on downstream), its
permissions, and its parts of the run page and the viewer."""

from core import jobs
from core.signals import job_finished
from inference import extensions
from inference.models import Run

from . import evaluation_job, pages, permissions, probe_viewer, segmentation, services, task_settings, viewer
from .downstream import services as downstream_services
from .downstream import training
from .models import DownstreamJob, Evaluation, ProbeSet
from .probes import build as probe_build
from .probes import services as probe_services


def register():
    permissions.register()
    extensions.add_run_section(pages.evaluation_section)
    extensions.add_run_section(pages.downstream_section)
    extensions.add_run_section(pages.probe_section)
    extensions.add_run_section(pages.probe_cases_section)
    extensions.add_array_source("uncertainty", viewer.uncertainty_source)
    extensions.add_array_source("probe-truth", probe_viewer.probe_truth_source)
    extensions.add_array_source("samples-sd", probe_viewer.samples_sd_source)
    extensions.add_task_check(task_settings.check_task_settings)
    jobs.register(
        Evaluation,
        handler=evaluation_job.evaluate,
        queue="metrics",
        what="evaluation",
        expected_errors=(services.EvaluationError,),
    )
    jobs.register(
        DownstreamJob,
        handler=training.train,
        queue="inference",
        what="downstream job",
        expected_errors=(downstream_services.DownstreamError, segmentation.NonFiniteLoss),
    )
    jobs.register(
        ProbeSet,
        handler=probe_build.build,
        queue="metrics",
        what="probe set",
        expected_errors=(probe_build.ProbeSetError, probe_services.ProbeError),
    )
    job_finished.connect(probe_services.on_run_finished, sender=Run, dispatch_uid="evaluation.probes.on_run_finished")
    job_finished.connect(services.on_run_finished, sender=Run, dispatch_uid="evaluation.on_run_finished")
    job_finished.connect(
        downstream_services.on_run_finished, sender=Run, dispatch_uid="evaluation.downstream.on_run_finished"
    )
