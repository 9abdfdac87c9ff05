"""Template context for the site's layout: whether the user may organise (create tasks, import datasets;
`inference.create_task`), for the menu's "Organise" link. Lazy: pages that do not ask run no query."""

from django.utils.functional import SimpleLazyObject

from core import policy


def organising(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"can_organise": False}
    return {"can_organise": SimpleLazyObject(lambda: policy.can(user, "inference.create_task"))}
