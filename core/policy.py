"""The permission layer: the one place that answers "may this user see this?" and "may they do this?".

Every page, API view, array endpoint and export asks here, never a flag of its own:

* `visible(user, Model)` is the queryset of `Model` rows the user may see. The app that owns the
  model registers its *scope* (`register_scope`); an app above it may register *restrictions*
  that narrow it further (`register_restriction`): the reader studies hide a running study's
  task from its readers without inference ever importing them.
* `can(user, action, obj=None)` answers an action named "<app>.<verb>" ("inference.start_run");
  the owning app registers its *rule* (`register_rule`). `require` raises the platform's errors:
  `NotAuthenticated` for anonymous users, `PermissionDenied` (403) otherwise, or `NotFound` (404)
  with `hide=True` where a 403 would confirm that the thing exists.
* `PolicyPermission` is the DRF permission class: a view names its actions per HTTP method or
  viewset action in `policy_actions`; reads with no action named are open, since the querysets
  come from `visible`.

Staff (site admins) may do everything; a rule never needs to say so.
"""

from collections import defaultdict

from django.http import Http404
from rest_framework.permissions import SAFE_METHODS, BasePermission

from . import errors

_scopes = {}
_restrictions = defaultdict(list)
_rules = {}


def _label(model):
    return model if isinstance(model, str) else model._meta.label_lower


def is_authenticated(user):
    return bool(user and user.is_authenticated)


def is_staff(user):
    return bool(is_authenticated(user) and user.is_staff)


def register_scope(model, scope):
    """`scope(user) -> QuerySet`: what a non-staff user may see of `model` (staff see every row)."""
    _scopes[_label(model)] = scope


def register_restriction(model, restriction):
    """`restriction(user, queryset) -> queryset`: applied after the scope, for non-staff users."""
    _restrictions[_label(model)].append(restriction)


def register_rule(action, rule):
    """`rule(user, obj) -> bool` for the action "<app>.<verb>" (never called for staff)."""
    _rules[action] = rule


def visible(user, model):
    label = _label(model)
    if label not in _scopes:
        raise LookupError(f"No visibility scope is registered for {label}.")
    if is_staff(user):
        return model._default_manager.all()
    queryset = _scopes[label](user)
    for restriction in _restrictions[label]:
        queryset = restriction(user, queryset)
    return queryset


def get_visible(user, model, message="Not found.", **lookup):
    """The one row of `model` matching `lookup` that the user may see, else a 404 (Django's `Http404`,
    which pages, DRF and `core.responses.json_errors` all answer alike)."""
    obj = visible(user, model).filter(**lookup).first()
    if obj is None:
        raise Http404(message)
    return obj


def can(user, action, obj=None):
    if action not in _rules:
        raise LookupError(f"No rule is registered for the action '{action}'.")
    if is_staff(user):
        return True
    return bool(_rules[action](user, obj))


def require(user, action, obj=None, *, hide=False, message=None):
    """Raise unless `can(user, action, obj)`: 401 for anonymous users, 403 (or 404 with `hide`) otherwise."""
    if can(user, action, obj):
        return
    if hide:
        raise errors.NotFound()
    if not is_authenticated(user):
        raise errors.NotAuthenticated(message or "Log in first.")
    raise errors.PermissionDenied(message or errors.PermissionDenied.default_detail)


def actions():
    """Every registered action (the permission matrix test walks them)."""
    return sorted(_rules)


def staff_only(user, obj=None):
    """A rule for actions only staff may take (staff never reach a rule, so: nobody else)."""
    return False


def authenticated(user, obj=None):
    return is_authenticated(user)


class PolicyPermission(BasePermission):
    """DRF: `policy_actions = {"POST": "inference.start_run"}` or by viewset action name
    (`{"create": …, "cancel": …}`); an unsafe method with no action named is refused."""

    message = errors.PermissionDenied.default_detail

    def has_permission(self, request, view):
        action = self._action(request, view)
        if action is None:
            return request.method in SAFE_METHODS
        if can(request.user, action):
            return True
        self.message = getattr(view, "policy_messages", {}).get(action, self.message)
        return False

    def has_object_permission(self, request, view, obj):
        """Called by DRF's `get_object`: the view's action, asked again with the object."""
        action = self._action(request, view)
        if action is None:
            return request.method in SAFE_METHODS
        if can(request.user, action, obj):
            return True
        self.message = getattr(view, "policy_messages", {}).get(action, errors.PermissionDenied.default_detail)
        return False

    @staticmethod
    def _action(request, view):
        table = getattr(view, "policy_actions", {})
        name = getattr(view, "action", None)
        if name and name in table:
            return table[name]
        return table.get(request.method)
