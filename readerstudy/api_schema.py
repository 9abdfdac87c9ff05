"""OpenAPI descriptions of the reader's endpoints and the study analysis (documentation only: the views
answer JSON they build themselves, see `readerstudy.views`)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from inference.api_schema import ARRAY_DATA, ARRAY_HEADER, ArrayHeaderSerializer


class ItemImageSerializer(serializers.Serializer):
    header_url = serializers.CharField()
    header = ArrayHeaderSerializer(help_text="The image's viewer header, inline.")


class ItemSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The item's opaque token: all a reader learns of it.")
    images = ItemImageSerializer(many=True)
    draft = serializers.JSONField(allow_null=True, help_text="The autosaved incomplete answer, if any.")


class ReaderStateSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    finished = serializers.BooleanField()
    item = ItemSerializer(allow_null=True, help_text="The current item; null once finished.")


class AnswerSerializer(serializers.Serializer):
    item = serializers.CharField(help_text="The current item's token.")
    answer = serializers.JSONField(help_text="The answer, shaped by the study's design.")
    key = serializers.CharField(help_text="An idempotency key: the same key again answers the same state.")


class DraftSerializer(serializers.Serializer):
    item = serializers.CharField()
    answer = serializers.JSONField()


MESSAGE = OpenApiResponse(OpenApiTypes.OBJECT, description='`{"detail"}`')
ERRORS = {400: MESSAGE, 401: MESSAGE, 404: OpenApiResponse(OpenApiTypes.OBJECT, description="Not yours to read.")}
READ_STATE = {"responses": {200: ReaderStateSerializer, **ERRORS}}
READ_ANSWER = {
    "request": AnswerSerializer,
    "responses": {
        200: ReaderStateSerializer,
        409: OpenApiResponse(OpenApiTypes.OBJECT, description='Answered under another key: `{"detail", "state"}`.'),
        **ERRORS,
    },
}
READ_DRAFT = {"request": DraftSerializer, "responses": {204: None, **ERRORS}}
READ_IMAGE = {"responses": {**ARRAY_HEADER["responses"], 401: MESSAGE}}
READ_IMAGE_DATA = {"parameters": ARRAY_DATA["parameters"], "responses": {**ARRAY_DATA["responses"], 401: MESSAGE}}
STUDY_ANALYSIS = {
    "responses": {
        200: OpenApiResponse(
            OpenApiTypes.OBJECT,
            description="The study's analysis: per-run statistics, multi-reader tests, agreement (as the page shows).",
        ),
        404: MESSAGE,
    }
}
