"""The platform's errors (plain Python: pure modules may raise them too).

Services raise these, or subclasses named for their domain (`RunError`, `StudyError`…), with a
message written for the user; each class carries the HTTP status it means. `core.responses` is the
one place that turns them into answers; pages show the message instead (`messages.error`).
A message never includes a server path.
"""


class DomainError(Exception):
    """An operation the input, the state or the user's rights do not allow; the message says why."""

    status_code = 400
    default_detail = "The request is not valid."

    def __init__(self, detail=None, *, errors=None, headers=None):
        self.detail = str(detail) if detail is not None else self.default_detail
        self.errors = [str(error) for error in (errors or [])]
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class InvalidInput(DomainError):
    status_code = 400


class NotAuthenticated(DomainError):
    status_code = 401
    default_detail = "Log in first."


class PermissionDenied(DomainError):
    status_code = 403
    default_detail = "You do not have permission to do this."


class NotFound(DomainError):
    status_code = 404
    default_detail = "Not found."


class Conflict(DomainError):
    status_code = 409
    default_detail = "The request conflicts with the current state."


class TooLarge(DomainError):
    status_code = 413
    default_detail = "The request is too large."


class RateLimited(DomainError):
    status_code = 429
    default_detail = "Too many requests."
