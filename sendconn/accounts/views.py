import logging

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import LoginView
from django.http import Http404
from django.shortcuts import redirect, render
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from .forms import SignInForm

logger = logging.getLogger(__name__)


def home(request):
    return redirect("ops:dashboard")


def permission_denied(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)


class SignInView(LoginView):
    """User name and password (local accounts, then the directory), and "Sign in with …" when OpenID Connect
    is configured."""

    authentication_form = SignInForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["oidc_provider_name"] = settings.SENDCONN_OIDC_PROVIDER_NAME if settings.OIDC_RP_CLIENT_ID else ""
        return context


class OIDCSignInView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider; nothing to see while OpenID Connect isn't configured."""

    def get(self, request):
        if not settings.OIDC_RP_CLIENT_ID:
            raise Http404
        return super().get(request)


class OIDCCallbackView(OIDCAuthenticationCallbackView):
    """The provider sends the browser back here; failures go back to the sign-in page with the reason."""

    def get(self, request):
        if not settings.OIDC_RP_CLIENT_ID:
            raise Http404
        try:
            return super().get(request)
        except requests.RequestException as error:
            logger.warning("%s can't be reached: %s", settings.SENDCONN_OIDC_PROVIDER_NAME, error)
            messages.error(
                request, f"{settings.SENDCONN_OIDC_PROVIDER_NAME} can't be reached, so you couldn't be signed in. "
                "Try again in a few minutes; local accounts can still sign in."
            )
            return redirect(settings.LOGIN_URL)

    def login_failure(self):
        messages.error(
            self.request, f"{settings.SENDCONN_OIDC_PROVIDER_NAME} didn't sign you in. Try again, or sign in with "
            "a local account."
        )
        return redirect(settings.LOGIN_URL)
