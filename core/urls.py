from django.urls import path

from . import api, views

urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/token/", views.token, name="account-token"),
    path("accounts/token/renew/", views.renew_token, name="account-token-renew"),
    # Before django.contrib.auth.urls (medgen_site/urls.py), which serves the rest of the reset flow.
    path("accounts/password_reset/", views.password_reset, name="password_reset"),
    path("api/auth/register/", api.RegisterView.as_view(), name="api-register"),
    path("api/auth/token/", api.TokenView.as_view(), name="api-token"),
]
