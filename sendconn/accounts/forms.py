"""Forms of the permissions page: a role group's new member, a new user."""
from django import forms

from .selectors import users


class AddMemberForm(forms.Form):
    member = forms.ChoiceField(label="Add a member")

    def __init__(self, *args, group, **kwargs):
        super().__init__(*args, **kwargs)
        members = set(group.user_set.values_list("pk", flat=True))
        self.fields["member"].choices = [("", "Select a user")] + [
            (user.username, user.username) for user in users() if user.pk not in members
        ]


class NewUserForm(forms.Form):
    username = forms.CharField(label="User name", max_length=150)
    password = forms.CharField(
        label="Password", required=False, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave it empty to generate a one-time password, shown once on the next page.",
    )

    def clean_username(self):
        return self.cleaned_data["username"].strip()
