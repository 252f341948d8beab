from django import forms
from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from reviewapp.limits import BoundedTextField, max_chars

from .models import Appeal, AppealMessage
from .services import ALLOWED_ATTACHMENTS, AppealError, Upload


class LinkRequestForm(forms.Form):
    email = forms.EmailField(label=_("The email address of the account"))


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one ``<input type=file multiple>``; cleans to a list (empty when none)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        clean_one = super().clean
        if isinstance(data, list | tuple):
            return [clean_one(item, initial) for item in data if item]
        return [clean_one(data, initial)] if data else []


def attachment_rules() -> dict:
    """The attachment limits, as the portal states them (the service enforces them)."""
    extensions = [ext for exts, _magic in ALLOWED_ATTACHMENTS.values() for ext in exts]
    return {"extensions": extensions, "accept": ",".join(extensions),
            "max_files": settings.APPEAL_ATTACHMENT_MAX_FILES,
            "max_mb": settings.APPEAL_ATTACHMENT_MAX_BYTES // (1024 * 1024)}


class AppealForm(forms.Form):
    grounds = BoundedTextField(
        label=_("Why do you think the decision is wrong?"), rows=8, max_length=max_chars(Appeal, "grounds"),
        help_text=_("Explain in your own words. Tell us anything we may not know, for example what your "
                    "requests were for."))
    researcher_claim = forms.BooleanField(
        label=_("My account is part of the researcher access programme"), required=False)
    affiliation = forms.CharField(
        label=_("Affiliation (optional)"), max_length=max_chars(Appeal, "affiliation"), required=False,
        help_text=_("For example the university, lab or company you work for."))
    attachments = MultipleFileField(label=_("Files (optional)"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attachments"].widget.attrs["accept"] = attachment_rules()["accept"]
        self.fields["attachments"].widget.attrs["aria-describedby"] = "attachments-rules"
        self.fields["grounds"].widget.attrs["aria-describedby"] = "id_grounds_helptext"
        self.fields["affiliation"].widget.attrs["aria-describedby"] = "id_affiliation_helptext"


class MessageForm(forms.Form):
    text = BoundedTextField(label=_("Your message"), rows=5, max_length=max_chars(AppealMessage, "text"))


def uploads_from(files) -> list[Upload]:
    """The uploaded files as the service takes them. Too many files, or a file over the size limit, is refused
    here before anything is read into memory; the service checks every rule again (and the contents)."""
    rules = attachment_rules()
    if len(files) > rules["max_files"]:
        raise AppealError(gettext("Attach at most %(count)d files.") % {"count": rules["max_files"]})
    uploads = []
    for file in files:
        if file.size > settings.APPEAL_ATTACHMENT_MAX_BYTES:
            raise AppealError(gettext("%(name)s is %(size)d KB; each file may be at most %(max)d MB.")
                              % {"name": file.name, "size": file.size // 1024, "max": rules["max_mb"]})
        uploads.append(Upload(name=file.name, content_type=file.content_type or "", data=file.read()))
    return uploads
