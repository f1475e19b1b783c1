"""Message tracking in the browser: "did my message go out?" — a search listing messages, and one message's
timeline. Both read the message tracking entries (``transport.tracking``), which outlive the queued message.
"""

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_safe

from sendconn.accounts import roles
from sendconn.connectors.values import format_byte_quantity
from sendconn.transport import tracking
from sendconn.transport.models import Message

from ..search_forms import TrackingSearchForm

PAGE_SIZE = 50


@require_safe
@permission_required(roles.VIEW_MESSAGE_TRACKING, raise_exception=True)
def search(request):
    """Newest messages first; a search narrows them. Three queries (count, page, summaries) however many."""
    form = TrackingSearchForm(request.GET or None)
    page, summaries = None, []
    if not form.is_bound or form.is_valid():
        criteria = form.criteria() if form.is_bound else {}
        page = Paginator(tracking.search_messages(**criteria), PAGE_SIZE).get_page(request.GET.get("page"))
        summaries = tracking.message_summaries(page.object_list)
    return render(request, "ops/tracking/search.html", {"form": form, "page": page, "summaries": summaries})


@require_safe
@permission_required(roles.VIEW_MESSAGE_TRACKING, raise_exception=True)
def message(request, message_pk):
    timeline = tracking.message_timeline(message_pk)
    if timeline is None:
        raise Http404("No message tracking entries for this message.")
    # Notifications about this message, and the message a notification is about, while they are still queued.
    related = list(
        Message.objects.filter(Q(original_message_id=message_pk) | Q(notifications__id=message_pk))
        .values("pk", "original_message_id", "subject")
        .distinct()
    )
    context = {
        "timeline": timeline,
        "summary": timeline.summary,
        "size": format_byte_quantity(timeline.size),
        "notifications": [row for row in related if row["original_message_id"] == message_pk],
        "original": next((row for row in related if row["original_message_id"] != message_pk), None),
    }
    return render(request, "ops/tracking/message.html", context)
