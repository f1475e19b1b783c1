from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from .backends import DIRECTORY_UNREACHABLE


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
