"""Running uploaded models in a separate, confined process per job (issue 13).

The worker never loads an uploaded model itself. `host.Sandbox` starts
`python -I -c … inference.sandbox.child` with a clean environment in an empty scratch
directory and talks to it over two pipes (`protocol`: length-prefixed JSON headers and raw
array bytes, no pickle). Before it loads anything the child confines itself (`confine`:
rlimits, a private network namespace, Landlock, a small seccomp filter, an unprivileged
user) and checks the artifact (`tsops`: an allow-list of TorchScript operations over the
archive's code and every method graph; `onnxcheck`: no tensor anywhere with external data).
Whatever the model does, the worker gets a `SandboxError` whose message names the cause.

No Django import anywhere in this package: the child must start fast and small.
"""
