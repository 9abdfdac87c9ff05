"""How inference plugs into the platform, registered once from `AppConfig.ready`: its job kinds (runs:
inference on the GPU-capable queue, submissions on the CPU queue; model validations) and its permissions.
"""

from core import jobs
from core.signals import job_finished

from . import extensions, permissions, viewer
from .models import DatasetImport, ModelValidation, Run, RunKind
from .runner import ModelArtifactError
from .services import artifacts, dataset_imports, runs, submissions


def execute_run(run, context):
    handler = submissions.validate if run.kind == RunKind.SUBMISSION else runs.execute
    return handler(run, context)


def run_queue(run):
    return "metrics" if run.kind == RunKind.SUBMISSION else "inference"


def register():
    permissions.register()
    extensions.add_array_source("case-image", viewer.case_image_source)
    extensions.add_array_source("output", viewer.output_source)
    extensions.add_array_source("difference", viewer.difference_source)
    jobs.register(Run, handler=execute_run, queue=run_queue, what="run", expected_errors=(runs.RunError,))
    jobs.register(
        ModelValidation,
        handler=artifacts.validate,
        queue="inference",
        what="validation",
        expected_errors=(ModelArtifactError,),
    )
    jobs.register(DatasetImport, handler=dataset_imports.run_import, queue="metrics", what="dataset import")
    job_finished.connect(
        artifacts.on_validation_finished, sender=ModelValidation, dispatch_uid="inference.validation_finished"
    )
