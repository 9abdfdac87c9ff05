"""Accounts: self-registration (a setting turns it off) and API tokens (one per user, renewable)."""

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from .errors import Conflict, InvalidInput, PermissionDenied

USERNAME_MAX = 150


def register_user(*, username: str, password: str, email: str = ""):
    """A new account without staff rights; refused with the reasons when registration is off, the name is
    taken, or the password or e-mail address is not acceptable."""
    if not settings.MEDGEN_SELF_REGISTRATION:
        raise PermissionDenied("Self-registration is turned off on this site: ask an administrator for an account.")
    return create_account(username=username, password=password, email=email)


def create_account(*, username: str, password: str, email: str = ""):
    """A new account without staff rights, whatever the self-registration setting (an invitation link makes
    readers' accounts so): InvalidInput with the reasons for a bad name, password or e-mail address, Conflict
    for a name that is taken."""
    username = (username or "").strip()
    if not username or len(username) > USERNAME_MAX:
        raise InvalidInput(f"Give a username of 1 to {USERNAME_MAX} characters.")
    users = get_user_model()
    errors = []
    try:
        users.username_validator(username)
    except ValidationError as exc:
        errors += exc.messages
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            errors += exc.messages
    candidate = users(username=username, email=email)
    try:
        password_validation.validate_password(password or "", candidate)
    except ValidationError as exc:
        errors += exc.messages
    if errors:
        raise InvalidInput("The account was not created.", errors=errors)
    try:
        with transaction.atomic():
            if users.objects.filter(username__iexact=username).exists():
                raise Conflict(f"The username '{username}' is taken.")
            return users.objects.create_user(username=username, email=email, password=password)
    except IntegrityError:
        raise Conflict(f"The username '{username}' is taken.") from None


def token_for(user) -> Token:
    token, _ = Token.objects.get_or_create(user=user)
    return token


def renew_token(user) -> Token:
    """A new token for the user; the old one stops working at once."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)
