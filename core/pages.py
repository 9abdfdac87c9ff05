"""What page views share: showing a service's error on the next page.

Permission checks are `core.policy.require(user, action, obj)` calls inside the views, after the
object was looked up with `policy.get_visible` (so what a user may not see is a 404 before any 403);
`core.responses.DomainErrorMiddleware` sends anonymous users to the login page and answers the
others with the error page.
"""

from django.contrib import messages


def report(request, exc):
    """Show a service's error on the next page (the message is written for the user)."""
    messages.error(request, str(exc))
