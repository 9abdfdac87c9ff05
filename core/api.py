"""The accounts API: register, and exchange a username and password for a token (throttled by axes)."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from . import accounts
from .errors import NotAuthenticated


class RegisterSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=accounts.USERNAME_MAX)
    password = serializers.CharField(max_length=512, write_only=True)
    email = serializers.EmailField(required=False, allow_blank=True, default="")


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=accounts.USERNAME_MAX)
    password = serializers.CharField(max_length=512, write_only=True)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)


class RegisterView(APIView):
    """POST {"username", "password", "email"} → 201 {"id", "username"}: a participant's account."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=RegisterSerializer, responses={201: dict})
    def post(self, request):
        form = RegisterSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        user = accounts.register_user(**form.validated_data)
        return Response({"id": user.pk, "username": user.username}, status=status.HTTP_201_CREATED)


class TokenView(APIView):
    """POST {"username", "password"} → 200 {"token"}. Wrong passwords count towards the login lockout."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=CredentialsSerializer, responses={200: TokenSerializer})
    def post(self, request):
        form = CredentialsSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        # The underlying HttpRequest: axes marks a lockout on it for its middleware to answer (429).
        user = authenticate(request._request, **form.validated_data)
        if user is None:
            raise NotAuthenticated("Unknown username or wrong password.")
        return Response({"token": accounts.token_for(user).key})
