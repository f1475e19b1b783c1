"""Verify delivery: the recipients form, the run page with its live step table, and each connector's history.

The run page polls its status fragment every second with htmx while the run is running (the finished fragment
carries no trigger, so polling stops); without JavaScript a ``<noscript>`` refresh reloads the whole page.
"""

import uuid

from django import forms
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe
from django_htmx.middleware import HtmxDetails

from sendconn.accounts import roles
from sendconn.connectors.models import SendConnector
from sendconn.connectors.services import Caller

from . import selectors, services

HISTORY_PAGE_SIZE = 50


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it (its documented way to type ``request.htmx``)."""

    htmx: HtmxDetails


class VerifyForm(forms.Form):
    recipients = forms.CharField(
        label="Recipients",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text="One or more email addresses, separated by commas or semicolons. Use mailboxes that the "
        "connector delivers to (its domain, or behind its smart host).",
    )

    def clean_recipients(self) -> list[str]:
        return services.parse_recipients(self.cleaned_data["recipients"])


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(roles.VERIFY_CONNECTORS, raise_exception=True)
def verify_connector(request: HttpRequest, guid: uuid.UUID) -> HttpResponse:
    connector = get_object_or_404(SendConnector, guid=guid)
    if request.method == "POST":
        form = VerifyForm(request.POST)
        if form.is_valid():
            caller = Caller.web(request)
            try:
                run = services.start_verification(caller, connector, form.cleaned_data["recipients"])
            except ValidationError as error:
                for field, messages in error.message_dict.items():
                    form.add_error("recipients" if field == "recipients" else None, messages)
            else:
                return redirect("verification:verification", run_id=run.pk)
    else:
        form = VerifyForm(initial={"recipients": ", ".join(selectors.remembered_recipients(connector))})
    return render(request, "verification/start.html", {"connector": connector, "form": form})


def _run_or_404(run_id):
    run = selectors.get_run(run_id)
    if run is None:
        raise Http404
    return run


def _run_context(run):
    return {"run": run, "steps": run.steps.all(), "waiting_too_long": selectors.waiting_too_long(run)}


@require_safe
@permission_required(roles.VIEW_CONNECTORS, raise_exception=True)
def verification_run(request: HttpRequest, run_id: int) -> HttpResponse:
    return render(request, "verification/run.html", _run_context(_run_or_404(run_id)))


@require_safe
@permission_required(roles.VIEW_CONNECTORS, raise_exception=True)
def verification_status(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    """The step table alone, for htmx's polling; a plain request (no JavaScript) gets the whole page."""
    run = _run_or_404(run_id)
    if not request.htmx:
        return redirect("verification:verification", run_id=run.pk)
    return render(request, "verification/_status.html", _run_context(run))


@require_safe
@permission_required(roles.VIEW_CONNECTORS, raise_exception=True)
def verification_history(request: HttpRequest, guid: uuid.UUID) -> HttpResponse:
    connector = get_object_or_404(SendConnector, guid=guid)
    page = Paginator(selectors.runs_for(connector), HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "verification/history.html", {"connector": connector, "page": page})
