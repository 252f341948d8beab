"""Bounds on the text that staff and account holders write (README "Limits on what people type").

Each field's limit is written once, as ``max_length`` on its model field (a ``varchar(N)`` column, so the
database refuses anything longer too). Forms, API serializers, the OpenAPI schema and the services all read it
from there with :func:`max_chars`; services call :func:`ensure_within_limits` before they write, so a caller
that skips the form (a management command, a task, a test) is refused the same way.

This module imports nothing of ours: every layer, from ``people`` up, uses it.
"""

from __future__ import annotations

from django import forms
from django.db import models
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy

# A form's refusal of an over-long text (the error summary puts the field's label before it).
TOO_LONG = gettext_lazy("This is %(show_value)d characters long; the limit is %(limit_value)d.")


def max_chars(model: type[models.Model], field_name: str) -> int:
    """The limit of a model's text field, in characters."""
    limit = model._meta.get_field(field_name).max_length
    if limit is None:
        raise LookupError(f"{model.__name__}.{field_name} has no max_length")
    return limit


def _number(value: int) -> str:
    return number_format(value, force_grouping=True)


def too_long_message(*, label: str, limit: int, length: int) -> str:
    return gettext("%(label)s is %(length)s characters long; the limit is %(limit)s.") % {
        "label": label, "length": _number(length), "limit": _number(limit)}


def ensure_within_limits(model: type[models.Model], *, error: type[Exception] = ValueError,
                         **values: str | None) -> None:
    """Raise ``error`` (the service's own refusal type) naming the first field of ``values`` over its limit."""
    for name, value in values.items():
        label = str(model._meta.get_field(name).verbose_name)
        ensure_length(value, label=label[:1].upper() + label[1:], limit=max_chars(model, name), error=error)


def ensure_length(value: str | None, *, label: str, limit: int, error: type[Exception] = ValueError) -> None:
    """The same refusal for a text no model field holds (a reason that only the audit trail keeps)."""
    if value is not None and len(value) > limit:
        raise error(too_long_message(label=label, limit=limit, length=len(value)))


class BoundedTextarea(forms.Textarea):
    """A textarea followed by its limit in words ("At most 20,000 characters."), which static/js/char-counter.js
    turns into a live count. No ``maxlength`` attribute: a browser silently cuts a paste at it, and the person
    never learns that the end of their text was lost; the server refuses an over-long text instead."""

    def render(self, name, value, attrs=None, renderer=None):
        attrs = {**(attrs or {})}
        limit = int(self.attrs.get("data-max-chars") or attrs.get("data-max-chars"))
        field_id = attrs.get("id") or self.attrs.get("id") or f"id_{name}"
        limit_id = f"{field_id}_limit"
        described = " ".join(filter(None, [attrs.get("aria-describedby") or self.attrs.get("aria-describedby"),
                                           limit_id]))
        attrs["aria-describedby"] = described
        html = super().render(name, value, attrs, renderer)
        # data-left / data-over: the live count's words, for the script ("%(count)s" is its placeholder).
        return format_html(
            '{}<p class="hint char-limit" id="{}" data-left="{}" data-over="{}">{}</p>', html, limit_id,
            gettext("%(count)s characters left"), gettext("%(count)s characters too many"),
            gettext("At most %(limit)s characters.") % {"limit": _number(limit)})


class BoundedTextField(forms.CharField):
    """A form's multi-line text of at most ``max_length`` characters (read it from the model: max_chars)."""

    widget = BoundedTextarea

    def __init__(self, *, max_length: int, rows: int = 3, **kwargs):
        kwargs.setdefault("widget", BoundedTextarea(attrs={"rows": rows}))
        super().__init__(max_length=max_length, **kwargs)
        self.error_messages.setdefault("max_length", TOO_LONG)

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs.pop("maxlength", None)
        attrs["data-max-chars"] = str(self.max_length)
        return attrs
