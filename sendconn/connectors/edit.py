"""The edit dialog of a Send connector: the EAC's properties dialog with its General, Delivery and Scoping tabs.

The tabs are panels of one form with one Save, which calls ``services.set_send_connector`` once with the fields of
every tab (the service records only what changed). Every panel is always in the page, so what was typed on one tab
is still there on another: with JavaScript the tabs switch in place; without it a tab is a submit button that shows
the form again, unsaved, on that tab. The Delivery and Scoping tabs reuse the wizard's forms, so an entry is judged
the same way in both places.
"""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from sendconn.accounts import roles

from . import selectors, services
from .crypto import CredentialKeyError
from .forms import (
    AddressSpaceForm,
    GeneralForm,
    NetworkSettingsForm,
    SmartHostAuthenticationForm,
    SourceServerForm,
    TlsForm,
    place_service_errors,
)
from .views import list_url

TABS = {"general": "General", "delivery": "Delivery", "scoping": "Scoping"}
# Form prefix → the tab that shows the form.
FORM_TABS = {
    "general": "general",
    "network": "delivery",
    "authentication": "delivery",
    "tls": "delivery",
    "address_space": "scoping",
    "source_server": "scoping",
}


def _stored_credential(connector):
    if not connector.has_credential:
        return None
    try:
        return services.Credential(connector.auth_username, connector.get_password())
    except CredentialKeyError:
        return None  # undecryptable after a key change: the admin must type the password again


def _dialog_forms(connector):
    """{form prefix: (form class, extra form options)} of the whole dialog, in tab order."""
    return {
        "general": (GeneralForm, {"connector": connector}),
        "network": (NetworkSettingsForm, {}),
        "authentication": (SmartHostAuthenticationForm, {"stored_credential": _stored_credential(connector)}),
        "tls": (TlsForm, {}),
        "address_space": (AddressSpaceForm, {}),
        "source_server": (SourceServerForm, {}),
    }


def _forms_that_apply(forms):
    """The forms whose fields Save sends: with MX routing, the smart host authentication doesn't apply."""
    network = forms["network"]
    if network.is_valid() and not network.routes_through_smart_hosts:
        return [form for prefix, form in forms.items() if prefix != "authentication"]
    return list(forms.values())


def _posted_tab(request, default):
    tab = request.POST.get("show_tab") or request.POST.get("tab")
    return tab if tab in TABS else default


@permission_required(roles.CHANGE_CONNECTORS, raise_exception=True)
@require_http_methods(["GET", "POST"])
def edit_connector(request, guid, tab):
    if tab not in TABS:
        raise Http404
    connector = get_object_or_404(selectors.connectors_with_details(), guid=guid)
    data = request.POST if request.method == "POST" else None
    forms = {
        prefix: form_class(data, initial=form_class.initial_for(connector), prefix=prefix, **options)
        for prefix, (form_class, options) in _dialog_forms(connector).items()
    }
    page_errors = []
    if request.method == "POST":
        tab = _posted_tab(request, tab)
        edited = {prefix: form.edit_lists() for prefix, form in forms.items()}
        if "show_tab" in request.POST or any(form is not None for form in edited.values()):
            # Another tab, or an Add/Edit/Remove button: the dialog again as typed, nothing saved yet.
            tab = next((FORM_TABS[prefix] for prefix, form in edited.items() if form is not None), tab)
            forms = {prefix: edited[prefix] or form.redisplay() for prefix, form in forms.items()}
        else:
            applying = _forms_that_apply(forms)
            if all([form.is_valid() for form in applying]):
                params = {}
                for form in applying:
                    params.update(form.connector_params())
                try:
                    saved = services.set_send_connector(services.Caller.web(request), connector, **params)
                except ValidationError as error:
                    page_errors = place_service_errors(applying, error)
                else:
                    messages.success(request, f'The Send connector "{saved.connector.name}" was saved.')
                    for warning in saved.warnings:
                        messages.warning(request, warning)
                    return redirect(list_url(saved.connector))
            # A form that doesn't apply is shown as typed, without its problems; the first tab with a problem opens.
            forms = {prefix: form if form in applying else form.redisplay() for prefix, form in forms.items()}
            tab = next((FORM_TABS[prefix] for prefix, form in forms.items() if form in applying and form.errors), tab)
    return render(
        request,
        "connectors/edit/edit.html",
        {
            "connector": connector,
            "tab": tab,
            "tabs": TABS.items(),
            "forms": forms,
            "page_errors": page_errors,
            "list_url": list_url(connector),
        },
    )
