"""The New Send connector wizard (EAC: Mail flow > Send connectors > Add), a formtools SessionWizardView.

Each run of the wizard has its own ``wizard_instance`` token, posted back in a hidden input, that keys its
session storage: two browser tabs running the wizard at once never see each other's pages. Lists are edited
with submit buttons that re-show the same page (see ``forms``), so JavaScript is optional. Finish calls
``services.new_send_connector`` once; a refusal (say, the name was taken meanwhile) re-shows the page concerned.
"""

import re
import secrets
import time

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect
from formtools.wizard.forms import ManagementForm
from formtools.wizard.storage.session import SessionStorage
from formtools.wizard.views import SessionWizardView

from sendconn.accounts import roles

from . import crypto, services
from .forms import (
    SMART_HOSTS,
    AddressSpaceForm,
    NameTypeForm,
    NetworkSettingsForm,
    SmartHostAuthenticationForm,
    SourceServerForm,
    place_service_errors,
)
from .servers import local_server

# The instruction on top of each page of the EAC's wizard (exchange-send-connectors.md, "Wizard pages").
STEP_INSTRUCTIONS = {
    "name": "Create a new Send connector. Specify a name and type for the connector.",
    "network": (
        "Specify how to send mail with this connector: by the MX record associated with the recipient domain, or "
        "through smart hosts (add each by IP address or FQDN)."
    ),
    "authentication": (
        "Choose how the connector authenticates to the smart hosts. Basic authentication takes a user name and "
        "password."
    ),
    "address_space": (
        "Specify the address space or address spaces to which this connector will route mail: * for all domains, "
        "contoso.com for one domain, *.contoso.com for a domain and its subdomains. A lower cost is preferred."
    ),
    "source_server": "Associate this connector with the servers containing transport roles that send its mail.",
}
PREFIX = "new_send_connector"
INSTANCE_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_RUNS_PER_SESSION = 10  # abandoned runs beyond this are dropped from the session, oldest first


class SealedSessionStorage(SessionStorage):
    """Step data in the session, with a typed smart-host password encrypted the way connectors store it."""

    def set_step_data(self, step, data):
        data = dict(data.lists())
        for key in _password_keys(data):
            data[key] = [crypto.encrypt(value).decode() if value else "" for value in data[key]]
        super().set_step_data(step, data)

    def get_step_data(self, step):
        data = super().get_step_data(step)
        for key in _password_keys(data or {}):
            data.setlist(key, [_unseal(value) for value in data.getlist(key)])
        return data


def _password_keys(data):
    return [key for key in data if key.endswith("-password")]


def _unseal(value):
    try:
        return crypto.decrypt(value.encode()) if value else ""
    except crypto.CredentialKeyError:
        return ""  # the key changed mid-wizard: the admin types the password again


def _routes_through_smart_hosts(wizard):
    return (wizard.get_cleaned_data_for_step("network") or {}).get("routing") == SMART_HOSTS


def _forget_old_runs(session, current):
    runs = sorted(
        (key for key in session.keys() if key.startswith(f"wizard_{PREFIX}_") and key != current),
        key=lambda key: session[key].get("extra_data", {}).get("started", 0),
    )
    for key in runs[: max(0, len(runs) - (MAX_RUNS_PER_SESSION - 1))]:
        del session[key]


@method_decorator(permission_required(roles.ADD_CONNECTORS, raise_exception=True), name="dispatch")
class NewSendConnectorWizard(SessionWizardView):
    form_list = [
        ("name", NameTypeForm),
        ("network", NetworkSettingsForm),
        ("authentication", SmartHostAuthenticationForm),
        ("address_space", AddressSpaceForm),
        ("source_server", SourceServerForm),
    ]
    condition_dict = {"authentication": _routes_through_smart_hosts}
    storage_name = "sendconn.connectors.wizard.SealedSessionStorage"
    template_name = "connectors/wizard/wizard.html"
    http_method_names = ["get", "head", "post"]

    def dispatch(self, request, *args, **kwargs):
        response = self._dispatch(request, *args, **kwargs)
        if request.htmx and response.status_code == 302:
            # In the modal wizard window (htmx), Finish, Cancel and "expired" lead the whole window to the page.
            return HttpResponseClientRedirect(response["Location"])
        return response

    def _dispatch(self, request, *args, **kwargs):
        if request.method.lower() not in self.http_method_names:
            return self.http_method_not_allowed(request, *args, **kwargs)
        if request.method == "POST":
            self.instance_id = request.POST.get("wizard_instance", "")
            known = INSTANCE_ID.fullmatch(self.instance_id) and f"wizard_{self.get_prefix(request)}" in request.session
            if not known:
                messages.error(
                    request, "This New send connector wizard has already finished or has expired. Start again."
                )
                return redirect("connectors:new")
        else:
            self.instance_id = secrets.token_urlsafe(16)
        return super().dispatch(request, *args, **kwargs)

    def get_prefix(self, request, *args, **kwargs):
        return f"{PREFIX}_{self.instance_id}"

    def get(self, request, *args, **kwargs):
        local_server()  # a fresh install lists its own server in "Select a Server"
        _forget_old_runs(request.session, current=self.storage.prefix)
        response = super().get(request, *args, **kwargs)
        self.storage.extra_data = {"started": time.time()}
        return response

    def post(self, request, *args, **kwargs):
        if "wizard_cancel" in request.POST:
            self._forget_run()
            return redirect("connectors:list")
        step = self._posted_step()
        form = self.get_form(step, data=request.POST)
        edited = form.edit_lists()
        if edited is not None:
            return self.render(edited)
        if request.POST.get("wizard_goto_step"):
            # Back keeps what was typed on this page, unchecked, for when the admin comes forward again.
            self.storage.set_step_data(step, self.process_step(form))
            self._forget_cached_steps()
        return super().post(request, *args, **kwargs)

    def _posted_step(self):
        management = ManagementForm(self.request.POST, prefix=self.prefix)
        if not management.is_valid() or management.cleaned_data["current_step"] not in self.get_form_list():
            raise SuspiciousOperation("The wizard's page data is missing or has been tampered with.")
        self.storage.current_step = management.cleaned_data["current_step"]
        return self.storage.current_step

    def _forget_cached_steps(self):
        """Drop formtools' per-request caches of step conditions and cleaned data after a step's data changed."""
        for name in list(vars(self)):
            if name in ("_resolved_form_list", "_cache_signature") or name.startswith("_cleaned_data_cache_"):
                delattr(self, name)

    def _forget_run(self):
        self.request.session.pop(self.storage.prefix, None)

    def get_form_kwargs(self, step=None):
        if step == "network":
            return {"usage": (self.get_cleaned_data_for_step("name") or {}).get("usage")}
        if step == "authentication":
            # A password typed earlier in this run isn't shown again; a blank box keeps it.
            stored = self.storage.get_step_data(step) or {}
            username, password = stored.get(f"{step}-username", ""), stored.get(f"{step}-password")
            return {"stored_credential": services.Credential(username, password) if password else None}
        return {}

    def get_form_initial(self, step):
        """A page the admin already filled in shows those values again (unchecked until Next)."""
        data = self.storage.get_step_data(step)
        if data is None:
            return {}
        form = self.form_list[step](data=data, prefix=self.get_form_prefix(step), **self.get_form_kwargs(step))
        return form.current_values()

    def process_step(self, form):
        data = super().process_step(form)
        if isinstance(form, SmartHostAuthenticationForm) and form.keeps_stored_password:
            key = form.add_prefix("password")
            if not data.get(key):
                data = data.copy()
                data[key] = form.options["stored_credential"].password
        return data

    def render_next_step(self, form, **kwargs):
        return self.render_goto_step(self.steps.next)

    def render_goto_step(self, goto_step, **kwargs):
        # Unbound, so a page not yet completed shows its values without premature "required" messages.
        self.storage.current_step = goto_step
        return self.render(self.get_form())

    def render_done(self, form, **kwargs):
        """Check every page again, then create; unlike formtools' version, keep the data if creating fails."""
        forms_by_step = {}
        for step in self.get_form_list():
            step_form = self.get_form(step, data=self.storage.get_step_data(step))
            if not step_form.is_valid():
                return self.render_revalidation_failure(step, step_form, **kwargs)
            forms_by_step[step] = step_form
        return self.done(list(forms_by_step.values()), form_dict=forms_by_step, **kwargs)

    def done(self, form_list, form_dict, **kwargs):
        params = {}
        for form in form_list:
            params.update(form.connector_params())
        try:
            saved = services.new_send_connector(services.Caller(self.request.user.username, "Web"), **params)
        except ValidationError as error:
            return self._render_refusal(form_dict, error)
        self._forget_run()
        connector = saved.connector
        messages.success(self.request, f'The Send connector "{connector.name}" was created.')
        for warning in saved.warnings:
            messages.warning(self.request, warning)
        return redirect(f"{reverse('connectors:list')}?{urlencode({'selected': str(connector.guid)})}")

    def _render_refusal(self, form_dict, error):
        """Show the service's refusal on the first page it concerns; what no field shows goes on top."""
        leftovers = place_service_errors(form_dict.values(), error)
        step = next((step for step, form in form_dict.items() if form.errors), self.steps.last)
        form = form_dict[step]
        if leftovers:
            form.add_error(None, leftovers)
        self.storage.current_step = step
        return self.render(form)

    def get_context_data(self, form, **kwargs):
        context = super().get_context_data(form=form, **kwargs)
        context.update(
            wizard_instance=self.instance_id,
            instruction=STEP_INSTRUCTIONS[self.steps.current],
            step_template=f"connectors/wizard/_{self.steps.current}.html",
        )
        return context
