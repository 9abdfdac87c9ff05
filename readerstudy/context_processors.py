"""Template context for the site's layout: whether the user takes part only as a reader (the menu then
shows their reading, not models and the API). Evaluated lazily: pages that do not ask run no query."""

from django.utils.functional import SimpleLazyObject

from . import selectors


def reading(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"only_reader": False}
    return {"only_reader": SimpleLazyObject(lambda: selectors.is_only_reader(user))}
