"""Forms of the inference pages, and the input rules that the forms and the API share."""

import json

from django import forms

from core import policy

from . import sampling
from .models import EvaluationProfile, EvaluationRegion, ModelFamily, Normalisation, Task

#: The largest size of one declared spatial axis: the dry run allocates an array of the declared shape.
MAX_DECLARED_AXIS = 4096
FREE_AXIS_WORDS = ("any", "none", "null", "")


def parse_spatial_shape(value):
    """A model's declared spatial shape from a list ([128, 128], [null, 64, 64]) or text ("128, 128",
    "64 × 64 × 64", "any, 128", "[128, 128]"): 2 or 3 positive sizes up to MAX_DECLARED_AXIS, or
    None for an axis of any size. Raises ValueError with a message for the user."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                raise ValueError("Give sizes like '128, 128' or [64, 64, 64].") from None
        else:
            value = [part.strip() for part in text.replace("×", ",").replace("x", ",").split(",")]
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise ValueError("Give 2 (H, W) or 3 (D, H, W) sizes, e.g. 128, 128.")
    shape = []
    for size in value:
        if size is None or (isinstance(size, str) and size.lower() in FREE_AXIS_WORDS):
            shape.append(None)
            continue
        if isinstance(size, str) and size.isdigit():
            size = int(size)
        if isinstance(size, bool) or not isinstance(size, int):
            raise ValueError("Each size is a positive whole number, or 'any' (null) for an axis of any size.")
        if not 1 <= size <= MAX_DECLARED_AXIS:
            raise ValueError(f"Each size is between 1 and {MAX_DECLARED_AXIS}; got {size}.")
        shape.append(size)
    return shape


def parse_scheduler(value):
    """A noise predictor's scheduler from a dict or its JSON text, checked (`sampling.SchedulerSpec`);
    None for empty. Raises ValueError with a message for the user."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise ValueError(
                'Give the scheduler as JSON, e.g. {"kind": "ddim", "num_train_timesteps": 1000}.'
            ) from None
    return sampling.SchedulerSpec.from_dict(value).as_dict()


class ModelUploadForm(forms.Form):
    name = forms.CharField(max_length=200)
    task = forms.ModelChoiceField(queryset=Task.objects.none(), to_field_name="slug")
    file = forms.FileField(help_text="TorchScript (.pt, torch.jit.save) or ONNX (.onnx). Pickles are refused.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    in_channels = forms.IntegerField(min_value=1, max_value=64, initial=1)
    out_channels = forms.IntegerField(min_value=1, max_value=64, initial=1)
    spatial_shape = forms.CharField(initial="128, 128", help_text="H, W or D, H, W; 'any' for a free axis.")
    normalisation = forms.ChoiceField(choices=Normalisation.choices, initial=Normalisation.NONE)
    stochastic = forms.BooleanField(required=False)
    samples_per_case = forms.IntegerField(min_value=1, max_value=64, initial=1)
    # Optional as in the API: a post without it (an older client, a script) uploads a regression model.
    family = forms.ChoiceField(
        choices=ModelFamily.choices,
        initial=ModelFamily.REGRESSION,
        required=False,
        help_text="What kind of generator this is; shown on the model page and filterable on the leaderboard.",
    )
    scheduler = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='Diffusion noise predictors only: the scheduler as JSON, e.g. {"kind": "ddim", '
        '"num_train_timesteps": 1000}; the file is then ε(x_t, t) and the platform samples.',
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["task"].queryset = policy.visible(user, Task)

    def clean_family(self):
        return self.cleaned_data.get("family") or ModelFamily.REGRESSION

    def clean_scheduler(self):
        try:
            return parse_scheduler(self.cleaned_data.get("scheduler"))
        except (ValueError, TypeError) as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_spatial_shape(self):
        try:
            return parse_spatial_shape(self.cleaned_data["spatial_shape"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class SubmissionForm(forms.Form):
    name = forms.CharField(max_length=200)
    # Django renders help_text as HTML (`|safe`): the angle brackets are written as entities.
    file = forms.FileField(
        help_text="A zip of outputs named by case id: <code>&lt;case_id&gt;.nii.gz</code>, .npy, .png, .dcm …"
    )


class TaskForm(forms.ModelForm):
    """A task's settings as every task form checks them: the metrics, profile and region come from the
    catalogue (`Task.clean` runs the checks the apps above register), so a typo is refused with the known
    names rather than silently ignored."""

    class Meta:
        model = Task
        fields = [
            "slug", "name", "kind", "description", "dataset", "reference_dataset", "data_range",
            "metrics", "primary_metric", "ranking", "profile", "region", "region_threshold", "is_public",
        ]  # fmt: skip
        error_messages = {
            "profile": {"invalid_choice": f"Unknown profile %(value)r. Known: {', '.join(EvaluationProfile.values)}."},
            "region": {"invalid_choice": f"Unknown region %(value)r. Known: {', '.join(EvaluationRegion.values)}."},
        }


class DatasetImportForm(forms.Form):
    """A dataset to import from the site: a zip in any format the importers read (README "Data formats")."""

    name = forms.CharField(max_length=200, help_text="Unique among datasets; tasks choose their dataset by it.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    is_public = forms.BooleanField(required=False, label="Public", help_text="Readable by anyone, without login.")
    file = forms.FileField(
        label="Zip archive",
        help_text="One folder (or file) per case, or a flat zip of one case per file: NIfTI, DICOM, NumPy "
        "(.npy/.npz), PNG or TIFF; inputs, references, label and ROI masks named as the README describes.",
    )
