"""OpenAPI descriptions of the plain endpoints (`core.endpoints`): the viewer's array header and bytes.

Documentation only: these serializers describe what `arrays.header` answers; no view validates with them.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class WindowSerializer(serializers.Serializer):
    center = serializers.FloatField()
    width = serializers.FloatField()


class PresetSerializer(WindowSerializer):
    name = serializers.CharField()
    lower = serializers.FloatField()
    upper = serializers.FloatField()


class RangeSerializer(serializers.Serializer):
    min = serializers.FloatField()
    max = serializers.FloatField()


class ArrayHeaderSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(["image", "label", "difference", "uncertainty"])
    display = serializers.CharField(
        help_text="`channel-0`, `log-magnitude` (two-channel k-space) or `norm-over-channels`."
    )
    shape = serializers.ListField(child=serializers.IntegerField(), help_text="Spatial shape: (H, W) or (D, H, W).")
    channels = serializers.IntegerField()
    dtype = serializers.CharField(help_text="Always `float32`.")
    byte_order = serializers.CharField(help_text="Always `little`.")
    spacing = serializers.ListField(child=serializers.FloatField(), help_text="mm per spatial axis.")
    slices = serializers.IntegerField(help_text="How many `?slice=k` planes the data URL serves.")
    whole_bytes = serializers.IntegerField(help_text="Bytes of the whole array (refused past the server's limit).")
    rows = serializers.IntegerField()
    columns = serializers.IntegerField()
    window = WindowSerializer(help_text="The default window.")
    presets = PresetSerializer(many=True)
    range = RangeSerializer()
    data_url = serializers.CharField(help_text="Where the float32 bytes are.")


SLICE = OpenApiParameter(
    "slice",
    int,
    description="One slice (H × W) of the shown plane; without it, the whole array (413 past the size limit).",
)
ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description='`{"detail"}`: the request is not valid.'),
    404: OpenApiResponse(OpenApiTypes.OBJECT, description='`{"detail"}`: not found, or not visible to you.'),
}
ARRAY_HEADER = {"responses": {200: ArrayHeaderSerializer, **ERRORS}}
ARRAY_DATA = {
    "parameters": [SLICE],
    "responses": {
        (200, "application/octet-stream"): OpenApiResponse(
            OpenApiTypes.BINARY,
            description="Little-endian float32 values, C order; `X-Array-Shape` names the shape.",
        ),
        413: OpenApiResponse(OpenApiTypes.OBJECT, description="The whole array is over the size limit: ask a slice."),
        **ERRORS,
    },
}
