"""The dashboard: the home page after sign-in. Each number links to the screen that explains it."""

from django.contrib.auth.decorators import permission_required
from django.shortcuts import render
from django.views.decorators.http import require_safe

from sendconn.accounts import roles
from sendconn.observability import charts, flow

from .. import overview, process_status


@require_safe
# The home page opens for every role group; the numbers it shows are all ones each of them may read.
@permission_required(roles.VIEW_CONNECTORS, raise_exception=True)
def dashboard(request):
    queue_totals = overview.queue_totals()
    context = {
        "connectors": overview.connector_counts(),
        "failing_connectors": overview.failing_connectors(),
        "queue_totals": queue_totals,
        "waiting_total": sum(count for _, count in queue_totals),
        "suspended_queues": overview.suspended_queue_count(),
        "recent": overview.recent_outcomes(),
        "oldest": overview.oldest_waiting_message(),
        "processes": process_status.read(),  # (updated_at, [ProcessStatus]) or None
        "flow_chart": charts.flow_chart(flow.mail_flow()),
        "depth_chart": charts.depth_chart(flow.queue_depth()),
    }
    return render(request, "ops/dashboard.html", context)
