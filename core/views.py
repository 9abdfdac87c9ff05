"""Account pages: sign up, the user's API token (shown and renewed), password reset where e-mail works."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import accounts
from .errors import DomainError
from .forms import SignupForm


def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = accounts.register_user(**form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.detail)
            for error in exc.errors:
                form.add_error("password" if "password" in error.lower() else None, error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.username}. Join a task to take part in its benchmark.")
            return redirect("home")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def token(request):
    return render(request, "registration/token.html", {"token": accounts.token_for(request.user)})


@login_required
@require_POST
def renew_token(request):
    accounts.renew_token(request.user)
    messages.success(request, "A new token was made; the old one no longer works.")
    return redirect("account-token")


def password_reset(request):
    """Django's password reset where e-mail is configured (`MEDGEN_EMAIL`); elsewhere the form would say a
    mail was sent that can never arrive, so the page says to ask an administrator instead."""
    if not settings.MEDGEN_EMAIL:
        return render(request, "registration/password_reset_unavailable.html")
    return auth_views.PasswordResetView.as_view()(request)
