"""The home redirect, the error pages, sign-in (local, directory, OpenID Connect), and permissions (role groups,
users, sign-in lockouts)."""

import logging
import sys

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.models import Group
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from sendconn.connectors.services import Caller

from . import lockouts, roles, selectors, services
from .forms import AddMemberForm, NewUserForm, SignInForm

logger = logging.getLogger(__name__)

DATABASE_RETRY_AFTER = 10  # seconds: the 503's Retry-After


def home(request):
    return redirect("ops:dashboard")


def permission_denied(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)


def server_error(request):
    """Django's 500 handler, called while the exception is being handled. A database that can't be reached (a
    restart, a network cut) gets a 503 page in the console's look, rendered without the request: its user and
    role flags would need the database. Connections are checked before each request (CONN_HEALTH_CHECKS), so
    reloading the page works again as soon as the database is back."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        return HttpResponse(
            loader.render_to_string("503_database.html"), status=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER)}
        )
    return defaults.server_error(request)


# --- permissions › admin roles, users, sign-in lockouts: Organization Management only ---


def _run(request, change, done):
    """Apply ``change()`` and say ``done`` or, if the service refused, why."""
    try:
        change()
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, done)


manage_permissions = permission_required(roles.MANAGE_ROLE_GROUPS, raise_exception=True)
AUDIT_PAGE_SIZE = 50


@require_safe
@manage_permissions
def admin_roles(request, group_id=None):
    groups = selectors.role_groups()
    selected = next((group for group in groups if group_id in (None, group.pk)), None)  # the first by default
    if selected is None:
        raise Http404("The role group couldn't be found.")
    return render(
        request,
        "accounts/admin_roles.html",
        {
            "groups": groups,
            "selected": selected,
            "form": AddMemberForm(group=selected),
        },
    )


def _group_or_404(group_id):
    group = Group.objects.filter(pk=group_id, name__in=roles.ROLE_GROUPS).first()
    if group is None:
        raise Http404("The role group couldn't be found.")
    return group


@require_POST
@manage_permissions
def add_member(request, group_id):
    group = _group_or_404(group_id)
    form = AddMemberForm(request.POST, group=group)
    if form.is_valid():
        member = form.cleaned_data["member"]
        _run(
            request,
            lambda: services.add_role_group_member(Caller.web(request), group.name, member),
            f'"{member}" is now a member of "{group.name}".',
        )
    else:
        messages.error(request, "Select a user to add.")
    return redirect("permissions:role-group", group.pk)


@require_POST
@manage_permissions
def remove_member(request, group_id):
    group = _group_or_404(group_id)
    member = request.POST.get("member", "")
    _run(
        request,
        lambda: services.remove_role_group_member(Caller.web(request), group.name, member),
        f'"{member}" is no longer a member of "{group.name}".',
    )
    return redirect("permissions:role-group", group.pk)


@require_http_methods(["GET", "HEAD", "POST"])
@manage_permissions
@never_cache  # the page that shows a new user's one-time password must not be kept by the browser
def user_list(request):
    form = NewUserForm(request.POST or None)
    created = None
    if form.is_valid():
        try:
            created = services.new_user(
                Caller.web(request), form.cleaned_data["username"], form.cleaned_data["password"] or None
            )
        except ValidationError as error:
            form.add_error(None, error)  # the service names the field
        else:
            form = NewUserForm()
    return render(request, "accounts/users.html", {"users": selectors.users(), "form": form, "created": created})


@require_POST
@manage_permissions
def set_user_enabled(request, user_id, enabled):
    user = get_object_or_404(get_user_model(), pk=user_id)
    if enabled:
        _run(
            request, lambda: services.enable_user(Caller.web(request), user.username), f'"{user.username}" is enabled.'
        )
    else:
        _run(
            request,
            lambda: services.disable_user(Caller.web(request), user.username),
            f'"{user.username}" is disabled and can no longer sign in.',
        )
    return redirect("permissions:users")


@require_safe
@manage_permissions
def lockout_list(request):
    return render(request, "accounts/lockouts.html", {"lockouts": lockouts.current_lockouts()})


@require_safe
@manage_permissions
def audit_log(request):
    page = Paginator(selectors.permissions_audit_log(), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "accounts/audit.html", {"page": page})


@require_POST
@manage_permissions
def clear_lockout(request):
    kind, value = request.POST.get("kind", ""), request.POST.get("value", "")
    _run(request, lambda: lockouts.clear_lockout(Caller.web(request), kind, value), f'"{value}" may sign in again.')
    return redirect("permissions:lockouts")


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
                request,
                f"{settings.SENDCONN_OIDC_PROVIDER_NAME} can't be reached, so you couldn't be signed in. "
                "Try again in a few minutes; local accounts can still sign in.",
            )
            return redirect(settings.LOGIN_URL)

    def login_failure(self):
        messages.error(
            self.request,
            f"{settings.SENDCONN_OIDC_PROVIDER_NAME} didn't sign you in. Try again, or sign in with a local account.",
        )
        return redirect(settings.LOGIN_URL)
