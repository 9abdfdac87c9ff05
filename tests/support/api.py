"""API clients and the platform's refusals, as the tests expect them."""

from rest_framework.authtoken.models import Token

NOT_AUTHENTICATED = "Authentication credentials were not provided."
NOT_ALLOWED = "You do not have permission to do this."


def token_client(api_client, user):
    """`api_client` sending `user`'s API token on every request."""
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api_client


def assert_refused(response, who):
    """An anonymous request is a 401 that asks for the token (TokenAuthentication comes first, so DRF
    answers with its `WWW-Authenticate: Token`); a logged-in user without the right gets a 403."""
    if who == "anonymous":
        assert (response.status_code, response.json()) == (401, {"detail": NOT_AUTHENTICATED}), response.content
        assert response["WWW-Authenticate"] == "Token"
    else:
        assert (response.status_code, response.json()) == (403, {"detail": NOT_ALLOWED}), response.content
        assert "WWW-Authenticate" not in response
