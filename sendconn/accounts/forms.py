"""Forms of sign-in and of the permissions page (a role group's new member, a new user)."""

from typing import cast

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from .backends import DIRECTORY_UNREACHABLE
from .selectors import users


class AddMemberForm(forms.Form):
    member = forms.ChoiceField(label="Add a member")

    def __init__(self, *args, group, **kwargs):
        super().__init__(*args, **kwargs)
        members = set(group.user_set.values_list("pk", flat=True))
        cast(forms.ChoiceField, self.fields["member"]).choices = [("", "Select a user")] + [
            (user.username, user.username) for user in users() if user.pk not in members
        ]


class NewUserForm(forms.Form):
    username = forms.CharField(label="User name", max_length=150)
    password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave it empty to generate a one-time password, shown once on the next page.",
    )

    def clean_username(self):
        return self.cleaned_data["username"].strip()


class SignInForm(AuthenticationForm):
    """Django's sign-in form, which says so when the directory could not check the password."""

    def get_invalid_login_error(self):
        if getattr(self.request, DIRECTORY_UNREACHABLE, False):
            return ValidationError(
                "The directory can't be reached, so your password couldn't be checked. Try again in a few "
                "minutes; local accounts can still sign in.",
                code="directory_unreachable",
            )
        return super().get_invalid_login_error()
