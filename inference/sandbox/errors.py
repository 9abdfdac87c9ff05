"""What the sandbox reports. Every message names the cause, for the model's page or the run's error."""


class ModelArtifactError(Exception):
    """The file is not a model we can load safely, or it does not behave as declared (`runner` re-exports it)."""


class SandboxError(ModelArtifactError):
    """The model could not be checked, loaded or run in the sandbox; the message says why."""


class ForbiddenOperation(SandboxError):
    """The model's code uses an operation outside the allow-list (named in the message)."""


class ExternalData(SandboxError):
    """An ONNX tensor refers to data outside the model file (named in the message)."""


class LimitExceeded(SandboxError):
    """The model went past the memory or time limit of its sandbox."""


class ModelRaised(Exception):  # noqa: N818 - not a ModelArtifactError: `dry_run` adds the input's shape
    """The model's own code raised an error while predicting (the message is the model's)."""


class SandboxCrashed(SandboxError):
    """The sandbox process died (a signal, an exit) without saying why itself."""


def gib(n_bytes):
    """'8 GiB', '1.5 GiB', '512 MiB': a limit as people write it."""
    if n_bytes >= 2**30:
        return f"{n_bytes / 2**30:g} GiB"
    return f"{n_bytes / 2**20:g} MiB"


def memory_message(limit_bytes):
    return f"The model exceeded the {gib(limit_bytes)} memory limit."


def time_message(seconds):
    return f"The model ran past the {seconds:g} s limit."
