from django import forms

from reviewapp.limits import max_chars

from .models import StaffApiToken, User
from .roles import Role


class StaffCreateForm(forms.Form):
    username = forms.CharField(max_length=max_chars(User, "username"))
    role = forms.ChoiceField(choices=Role.choices)
    email = forms.EmailField(required=False, max_length=max_chars(User, "email"))
    first_name = forms.CharField(max_length=max_chars(User, "first_name"), required=False)
    last_name = forms.CharField(max_length=max_chars(User, "last_name"), required=False)


class StaffRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class StaffActiveForm(forms.Form):
    active = forms.TypedChoiceField(choices=[("1", "active"), ("0", "inactive")], coerce=lambda v: v == "1")



class PasswordChangeForm(forms.Form):
    """A staff member's new password, typed twice. Validation against Django's validators is the service's.

    The current password is asked for unless the change is the forced one after a one-time password.
    """

    old_password = forms.CharField(label="Current password", strip=False, required=False,
                                   widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    new_password1 = forms.CharField(label="New password", strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "new-password", "aria-describedby": "password-help"}))
    new_password2 = forms.CharField(label="New password again", strip=False,
                                    widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, forced: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.forced = forced
        if forced:
            del self.fields["old_password"]
        else:
            self.fields["old_password"].required = True

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_password1") and cleaned.get("new_password1") != cleaned.get("new_password2"):
            self.add_error("new_password2", "The two new passwords didn't match.")
        return cleaned


class StaffMemberForm(forms.Form):
    user = forms.IntegerField(min_value=1)


class SignInUnlockForm(forms.Form):
    username = forms.CharField(max_length=max_chars(User, "username"))


class ApiTokenCreateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=max_chars(StaffApiToken, "name"),
                           help_text="What will use it, e.g. “nightly decisions export”.")
    expires_in_days = forms.TypedChoiceField(
        label="Expires", coerce=int, empty_value=None, initial="90",
        choices=[("30", "in 30 days"), ("90", "in 90 days"), ("365", "in a year"), ("", "never")], required=False)
