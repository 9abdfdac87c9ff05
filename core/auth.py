"""Login throttling: django-axes locks a username from an address out after repeated failures, on every
login that goes through a request (the site's and the admin's login pages, the API's token endpoint)."""

from axes.backends import AxesStandaloneBackend


class ThrottledLogins(AxesStandaloneBackend):
    """Refuses a login while its username and address are locked out; then `ModelBackend` checks the
    password. `authenticate` without a request (management commands, the test client's `login`) has no
    address to throttle and is left to the next backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
