"""The sandbox process: `python -I -c "…; from inference.sandbox.child import main; main()" CONFIG`.

Started by `host.Sandbox` with a clean environment in an empty scratch directory; fd 0
carries requests, fd 1 replies (`protocol` frames); the model's own output to fd 1 goes to
stderr. Order matters (see `confine`): read the config and the model's bytes, confine this
single-threaded process, only then import numpy, torch or onnxruntime (`serve`), drop to the
unprivileged user, check the artifact before loading it, and serve predictions.

This module imports nothing but the standard library and `confine` at the top, on purpose.
"""

import json
import os
import sys
import traceback

from . import confine


def main():
    config = json.loads(sys.argv[1])
    requests = os.fdopen(0, "rb")
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything written to stdout (a library, the model) goes to the log, not the pipe
    os.environ.clear()
    os.environ.update(config["env"])
    with open(config["model_path"], "rb") as handle:
        data = handle.read()
    try:
        summary, target = confine.confine(
            scratch=config["scratch"], cpu_seconds=config["cpu_seconds"], user=config.get("user")
        )
    except Exception as exc:  # a confinement that is required but failed: refuse to run at all
        _early_reply(replies, "sandbox", f"The sandbox could not confine itself: {exc}")
        return 2
    # Deliberately imported here, after confinement: numpy and torch start threads on import,
    # and Landlock/seccomp only bind threads started after them.
    from . import serve

    try:
        return serve.run(config, data, requests, replies, summary=summary, target=target)
    except Exception:
        traceback.print_exc()
        return 3


def _early_reply(replies, kind, message):
    body = json.dumps({"ok": False, "error": kind, "message": message, "arrays": []}).encode()
    replies.write(len(body).to_bytes(4, "big") + body)
    replies.flush()
