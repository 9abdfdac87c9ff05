"""The reader studies' errors: `core.errors` subclasses, so `core.responses` maps them like any other.

Pages show their message to the editor (`core.pages.report`); the reader's JSON endpoints answer with
their status code (`core.responses.json_errors`).
"""

from core.errors import Conflict, InvalidInput, NotFound


class StudyError(InvalidInput):
    """An operation the study's state or settings do not allow; the message says why (400)."""


class NotReadable(NotFound):
    """Something a reader may not reach (another reader's item, one still ahead, a study that is not theirs or
    not running). Always the bare 404 "Not found.": a reason, or a 403, would confirm that the thing exists."""

    def __init__(self):
        super().__init__()


class AnswerConflict(Conflict):
    """An answer to an item that already has one, or an idempotency key reused for another item (409)."""
