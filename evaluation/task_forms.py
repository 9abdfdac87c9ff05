"""The organisers' task form: a task's settings with its metrics as checkboxes from the catalogue (grouped by
tier, the pixel tier by profile), the primary metric as a choice, and its downstream evaluation.

The choices come from the catalogue (`task_settings.selectable_metrics`, `catalog.METRICS`); what a
combination may be is decided once, by the task checks `Task.clean` runs (`task_settings`), so these fields
take any name and let those checks refuse an unknown one with the known ones.
"""

from django import forms

from core import policy
from inference.models import Dataset, Task

from . import segmentation, task_settings
from .metrics import catalog

#: The downstream recipes an organiser may choose (`segmentation.SegmentationConfig`), by name.
RECIPES = {config.name: config for config in (segmentation.DEFAULT_CONFIG, segmentation.DEMO_CONFIG)}

#: Slugs that would be shadowed by a page under /tasks/.
RESERVED_SLUGS = {"new"}

TASK_FIELDS = [
    "name", "slug", "kind", "description", "dataset", "reference_dataset", "data_range",
    "profile", "region", "region_threshold", "metrics", "primary_metric", "ranking",
    "is_public", "hidden_references", "join_policy", "participant_models", "leaderboard_entry",
]  # fmt: skip


def _group_name(key):
    info = catalog.METRICS[key]
    if info.tier == catalog.PIXEL:
        return f"Pixel tier · {catalog.PROFILE_LABELS[catalog.profile_of(key)]}"
    return f"{info.tier.capitalize()} tier"


def grouped_choices(keys):
    """[(group, [(key, "label (key)")…])…] in catalogue order: pixel metrics by profile, then the feature tier."""
    groups = {}
    for key in keys:
        groups.setdefault(_group_name(key), []).append((key, f"{catalog.METRICS[key].label} ({key})"))
    return list(groups.items())


class CatalogueMultipleChoiceField(forms.MultipleChoiceField):
    """Checkboxes of catalogue names; an unknown name is left to the task checks (their message lists the known)."""

    def valid_value(self, value):
        return True


class CatalogueChoiceField(forms.ChoiceField):
    def valid_value(self, value):
        return True


class TaskForm(forms.ModelForm):
    metrics = CatalogueMultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "metric-choice"}),
        help_text="Per-case metrics must be of the task's profile; none ticked: the profile's pixel metrics.",
    )
    primary_metric = CatalogueChoiceField(
        required=False, help_text="What the leaderboard ranks by (with ranking 'Primary metric')."
    )
    downstream = forms.BooleanField(
        required=False,
        label="Downstream evaluation",
        help_text="Train a segmenter on each run's outputs and test it on the real images (the clinical tier); "
        "the task's cases need label masks. Once a result exists the split, recipe and seeds are frozen.",
    )
    downstream_recipe = forms.ChoiceField(
        choices=[(name, name) for name in RECIPES], required=False, label="Downstream recipe",
        help_text="The U-Net recipe (evaluation/segmentation.py); results are kept per recipe name.",
    )  # fmt: skip
    downstream_seeds = forms.CharField(
        required=False, initial="0, 1, 2", label="Downstream seeds",
        help_text="Training seeds, comma-separated; each gives one trained network.",
    )  # fmt: skip
    downstream_test_fraction = forms.FloatField(
        required=False, initial=0.5, min_value=0.05, max_value=0.95, label="Downstream test share",
        help_text="The share of labelled cases kept for testing (never trained on).",
    )  # fmt: skip

    class Meta:
        model = Task
        fields = TASK_FIELDS
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        datasets = policy.visible(user, Dataset).filter(private_to__isnull=True).order_by("name")
        self.fields["dataset"].queryset = datasets
        self.fields["reference_dataset"].queryset = datasets
        self.fields["metrics"].choices = grouped_choices(task_settings.selectable_metrics())
        self.fields["primary_metric"].choices = [("", "— none —"), *grouped_choices(catalog.METRICS)]
        setup = getattr(self.instance, "downstream_setup", None) if self.instance.pk else None
        if setup is not None:
            self.initial.update(
                downstream=True,
                downstream_recipe=setup.name if setup.name in RECIPES else None,
                downstream_seeds=", ".join(map(str, setup.seeds)),
                downstream_test_fraction=setup.test_fraction,
            )
            if setup.name not in RECIPES:
                self.fields["downstream_recipe"].choices += [(setup.name, f"{setup.name} (declared in Python)")]
                self.initial["downstream_recipe"] = setup.name
        self.downstream_setup = setup

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if slug in RESERVED_SLUGS:
            raise forms.ValidationError(f"'{slug}' names a page (/tasks/{slug}/): choose another slug.")
        return slug

    def clean_downstream_seeds(self):
        text = self.cleaned_data.get("downstream_seeds") or ""
        try:
            return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError("Give whole numbers separated by commas, e.g. 0, 1, 2.") from None

    def clean(self):
        data = super().clean()
        if data.get("downstream") and not data.get("downstream_seeds"):
            self.add_error("downstream_seeds", "Give at least one seed.")
        return data

    def downstream_request(self):
        """The downstream evaluation to declare ({config, seeds, test_fraction}), or None."""
        data = self.cleaned_data
        if not data.get("downstream"):
            return None
        name = data.get("downstream_recipe") or segmentation.DEFAULT_CONFIG.name
        setup = self.downstream_setup
        if name not in RECIPES and setup is not None and setup.name == name:
            config = segmentation.SegmentationConfig(**{**setup.config, "channels": tuple(setup.config["channels"])})
        else:
            config = RECIPES[name]
        fraction = data.get("downstream_test_fraction")
        return {
            "config": config,
            "seeds": data["downstream_seeds"],
            "test_fraction": 0.5 if fraction is None else fraction,
        }
