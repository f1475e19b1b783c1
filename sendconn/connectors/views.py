"""The EAC's "send connectors" page: the list with its details pane, and the actions on one connector.

Reads go through ``selectors`` (a constant number of queries per page), writes through ``services`` (the same
functions the cmdlets call, so every change lands in the admin audit log).
"""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from sendconn.accounts import roles
from sendconn.observability import charts, flow

from . import columns, selectors, services
from .models import SendConnector
from .values import format_byte_quantity

PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 50


def list_url(selected=None):
    """The list page, opened on the page that shows ``selected`` (a connector), its details in the pane."""
    url = reverse("connectors:list")
    return f"{url}?{urlencode({'selected': selected.guid})}" if selected else url


def _parse_guid(text):
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


def _pane(connector, return_url):
    """Context for ``connectors/_details.html``: the connector, the values Exchange formats, where actions return."""
    return {
        "connector": connector,
        "max_message_size": format_byte_quantity(connector.max_message_size),
        "return_url": return_url,
    }


@require_safe
@permission_required(roles.VIEW_CONNECTORS, raise_exception=True)
def connector_list(request):
    query = request.GET.get("q", "").strip()
    connectors = selectors.connector_rows(query)
    selected_guid = _parse_guid(request.GET.get("selected"))

    page_number = request.GET.get("page")
    if page_number is None and selected_guid:
        # Arriving from the wizard or an action: open the page that shows the selected connector.
        position = selectors.position_of(connectors, selected_guid)
        page_number = position // PAGE_SIZE + 1 if position is not None else 1
    # The columns of apps above (the last verification) come in the same query, so the page costs no more queries.
    page = Paginator(columns.annotate(connectors), PAGE_SIZE).get_page(page_number)
    rows = list(page)

    selected = None
    if selected_guid:
        selected = next((row for row in rows if row.guid == selected_guid), None)
        if selected is None:
            # Selected but not on this page or outside the search: still show its details.
            selected = selectors.connectors_with_details().filter(guid=selected_guid).first()
    if selected is None and rows:
        selected = rows[0]  # the EAC selects the first item; also when the selected one is gone

    # A row's link keeps the search and the page and selects the row; built once, not per row.
    params = request.GET.copy()
    params.pop("selected", None)
    params["page"] = str(page.number)
    select_url = f"?{params.urlencode()}&selected="
    context = {
        "page": page,
        "rows": rows,
        "columns": columns.list_columns(),
        "query": query,
        "selected": selected,
        "select_url": select_url,
    }
    if selected:
        # Enable/Disable come back to this page with this connector still selected.
        context.update(_pane(selected, f"{request.path}{select_url}{selected.guid}"))
    return render(request, "connectors/list.html", context)


@require_safe
@permission_required(roles.VIEW_CONNECTORS, raise_exception=True)
def connector_detail(request, guid):
    connector = get_object_or_404(selectors.connectors_with_details(), guid=guid)
    context = _pane(connector, request.get_full_path())
    context["flow_chart"] = charts.flow_chart(flow.mail_flow(connector_name=connector.name))
    context["depth_chart"] = charts.depth_chart(flow.queue_depth(connector_name=connector.name))
    return render(request, "connectors/detail.html", context)


def _back(request, connector):
    """Where an action returns: the page it was started from, else the list with the connector selected."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(list_url(connector))


def _set_enabled(request, guid, enabled):
    connector = get_object_or_404(SendConnector, guid=guid)
    state = "enabled" if enabled else "disabled"
    try:
        saved = services.set_send_connector(services.Caller.web(request), connector, enabled=enabled)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if saved.changed:
            messages.success(request, f'The Send connector "{connector.name}" was {state}.')
        else:  # a second click or a stale page
            messages.info(request, f'The Send connector "{connector.name}" is already {state}.')
    return _back(request, connector)


@require_POST
@permission_required(roles.CHANGE_CONNECTORS, raise_exception=True)
def enable_connector(request, guid):
    return _set_enabled(request, guid, True)


@require_POST
@permission_required(roles.CHANGE_CONNECTORS, raise_exception=True)
def disable_connector(request, guid):
    return _set_enabled(request, guid, False)


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(roles.DELETE_CONNECTORS, raise_exception=True)
def remove_connector(request, guid):
    connector = get_object_or_404(SendConnector, guid=guid)
    if request.method == "POST":
        name = connector.name
        services.remove_send_connector(services.Caller.web(request), connector)
        messages.success(request, f'The Send connector "{name}" was removed.')
        return redirect("connectors:list")
    return render(request, "connectors/remove.html", {"connector": connector, "cancel_url": list_url(connector)})


@require_safe
@permission_required(roles.VIEW_AUDIT_LOG, raise_exception=True)
def connector_audit_log(request, guid):
    connector = get_object_or_404(SendConnector, guid=guid)
    page = Paginator(selectors.audit_log_for(connector), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "connectors/audit.html", {"connector": connector, "page": page})
