from django import forms
from django.core.validators import RegexValidator

from reviewapp.limits import BoundedTextField, max_chars

from .models import Detector
from .schema import SLUG_PATTERN

# The flag contract's rule (flags.schema.SLUG_PATTERN): a detector names itself in every flag it posts,
# so a slug the contract would refuse must never be created.
detector_slug_validator = RegexValidator(
    SLUG_PATTERN.removesuffix("$") + r"\Z",
    "Use lowercase letters, digits, '-' and '_', starting with a letter or a digit.",
)


class DetectorCreateForm(forms.Form):
    slug = forms.CharField(max_length=64, validators=[detector_slug_validator],
                           help_text="What the detector sends as `detector` in each flag; cannot change later.")
    name = forms.CharField(max_length=max_chars(Detector, "name"), required=False, help_text="Default: the slug.")
    owner_team = forms.CharField(max_length=max_chars(Detector, "owner_team"), required=False)
    description = BoundedTextField(max_length=max_chars(Detector, "description"), required=False)

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if Detector.objects.filter(slug=slug).exists():
            raise forms.ValidationError(f"A detector '{slug}' already exists.")
        return slug


class DetectorActiveForm(forms.Form):
    active = forms.TypedChoiceField(choices=[("1", "active"), ("0", "inactive")], coerce=lambda v: v == "1")
