from django import forms

from .roles import Role


class StaffCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)
    email = forms.EmailField(required=False)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)


class StaffRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class StaffActiveForm(forms.Form):
    active = forms.TypedChoiceField(choices=[("1", "active"), ("0", "inactive")], coerce=lambda v: v == "1")

