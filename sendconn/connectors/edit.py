"""The edit dialog of a Send connector: the EAC's General, Delivery and Scoping tabs.

Each tab is its own page and form; Save calls ``services.set_send_connector`` with only that tab's fields.
The Delivery and Scoping tabs reuse the wizard's forms, so an entry is judged the same way in both places.
"""
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
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
    place_service_errors,
)

TABS = {"general": "General", "delivery": "Delivery", "scoping": "Scoping"}


def _stored_credential(connector):
    if not connector.has_credential:
        return None
    try:
        return services.Credential(connector.auth_username, connector.get_password())
    except CredentialKeyError:
        return None  # undecryptable after a key change: the admin must type the password again


def _tab_forms(tab, connector):
    """{form prefix: (form class, extra form options)} of one tab."""
    if tab == "general":
        return {"general": (GeneralForm, {"connector": connector})}
    if tab == "delivery":
        return {
            "network": (NetworkSettingsForm, {}),
            "authentication": (SmartHostAuthenticationForm, {"stored_credential": _stored_credential(connector)}),
        }
    return {"address_space": (AddressSpaceForm, {}), "source_server": (SourceServerForm, {})}


def _forms_that_apply(forms):
    """The forms whose fields Save sends: with MX routing, the smart host authentication doesn't apply."""
    network = forms.get("network")
    if network is not None and network.is_valid() and not network.routes_through_smart_hosts:
        return [network]
    return list(forms.values())


def _list_url(connector):
    return f"{reverse('connectors:list')}?{urlencode({'selected': connector.guid})}"


@permission_required(roles.CHANGE_CONNECTORS, raise_exception=True)
@require_http_methods(["GET", "POST"])
def edit_connector(request, guid, tab):
    if tab not in TABS:
        raise Http404
    connector = get_object_or_404(selectors.connectors_with_details(), guid=guid)
    data = request.POST if request.method == "POST" else None
    forms = {
        prefix: form_class(data, initial=form_class.initial_for(connector), prefix=prefix, **options)
        for prefix, (form_class, options) in _tab_forms(tab, connector).items()
    }
    page_errors = []
    if request.method == "POST":
        edited = {prefix: form.edit_lists() for prefix, form in forms.items()}
        if any(form is not None for form in edited.values()):
            # An Add/Edit/Remove button: show the tab again with the changed list, nothing saved yet.
            forms = {prefix: edited[prefix] or form.redisplay() for prefix, form in forms.items()}
        else:
            applying = _forms_that_apply(forms)
            if all([form.is_valid() for form in applying]):
                params = {}
                for form in applying:
                    params.update(form.connector_params())
                try:
                    caller = services.Caller(request.user.username, "Web")
                    saved = services.set_send_connector(caller, connector, **params)
                except ValidationError as error:
                    page_errors = place_service_errors(applying, error)
                else:
                    messages.success(request, f'The Send connector "{saved.connector.name}" was saved.')
                    for warning in saved.warnings:
                        messages.warning(request, warning)
                    return redirect(_list_url(saved.connector))
    return render(request, "connectors/edit/edit.html", {
        "connector": connector,
        "tab": tab,
        "tabs": TABS.items(),
        "tab_template": f"connectors/edit/_{tab}.html",
        "forms": forms,
        "page_errors": page_errors,
        "list_url": _list_url(connector),
    })
