"""The queue viewer: the queue list, a queue with its messages, and the queue and message actions.

Reads go through ``sendconn.transport.queues.selectors`` and actions through its ``services`` (the cmdlets'
functions: aggregate queries, and audit-logged actions). Every action is a confirmation page (GET: "Are you
sure…") and a POST that does it; View-Only Organization Management sees no buttons and gets the 403 page for the
URLs.
"""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from sendconn.accounts import roles
from sendconn.connectors.services import Caller
from sendconn.transport.queues import selectors, services
from sendconn.transport.queues.objects import QUEUE_STATUSES, QueueError, QueueNotFound

PAGE_SIZE = 50
MESSAGE_PAGE_SIZE = 50


def _queue_or_404(identity):
    try:
        return selectors.get_queue(identity)
    except QueueNotFound as error:
        raise Http404(str(error)) from None


def _message_or_404(identity, message_id):
    try:
        return selectors.get_message(f"{identity}\\{message_id}")
    except QueueNotFound as error:
        raise Http404(str(error)) from None


def _queue_url(identity):
    return reverse("ops:queue", args=[identity])


def _back_to(identity):
    """The queue's page while it has messages, else the list (an emptied queue no longer exists)."""
    try:
        return _queue_url(selectors.get_queue(identity).identity)
    except QueueNotFound:
        return reverse("ops:queues")


@require_safe
@permission_required(roles.VIEW_QUEUES, raise_exception=True)
def queue_list(request):
    status = request.GET.get("status", "")
    status = next((name for name in QUEUE_STATUSES if name.lower() == status.lower()), "")
    next_hop = request.GET.get("next_hop", "").strip()
    queues = selectors.queue_list(status=status or None, next_hop=next_hop or None)
    page = Paginator(queues, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "ops/queues/list.html",
        {
            "page": page,
            "status": status,
            "next_hop": next_hop,
            "statuses": QUEUE_STATUSES,
        },
    )


@require_safe
@permission_required(roles.VIEW_QUEUES, raise_exception=True)
def queue_detail(request, identity):
    queue = _queue_or_404(identity)
    page = Paginator(selectors.message_rows(queue), MESSAGE_PAGE_SIZE).get_page(request.GET.get("page"))
    queued = selectors.load_messages(page.object_list, {queue.key: queue})
    return render(request, "ops/queues/detail.html", {"queue": queue, "page": page, "messages_in_queue": queued})


# Queue actions: what the confirmation asks, the service, and what is said once done.
QUEUE_ACTIONS = {
    "retry": (
        "Are you sure you want to retry the queue '{}' now?",
        lambda caller, queue: services.retry_queue(caller, queue),
        "{changed} recipient(s) in '{identity}' will be retried now.",
    ),
    "resubmit": (
        "Are you sure you want to resubmit the messages in the queue '{}'? They will be routed again.",
        lambda caller, queue: services.retry_queue(caller, queue, resubmit=True),
        "{changed} recipient(s) from '{identity}' were routed again.",
    ),
    "suspend": (
        "Are you sure you want to suspend the queue '{}'? No message will leave it, including mail routed to it "
        "later, until you resume it.",
        services.suspend_queue,
        "The queue '{identity}' was suspended.",
    ),
    "resume": (
        "Are you sure you want to resume the queue '{}'?",
        services.resume_queue,
        "The queue '{identity}' was resumed.",
    ),
}
MESSAGE_ACTIONS = {
    "suspend": (
        "Are you sure you want to suspend the message '{}'?",
        services.suspend_message,
        "{changed} recipient(s) of the message '{identity}' were suspended.",
    ),
    "resume": (
        "Are you sure you want to resume the message '{}'?",
        services.resume_message,
        "{changed} recipient(s) of the message '{identity}' were resumed.",
    ),
    "remove": (
        "Are you sure you want to remove the message '{}' from the queue?",
        services.remove_message,  # with or without an NDR: the form's choice
        "{changed} recipient(s) of the message '{identity}' were removed.",
    ),
}


def _report(request, outcome, done, identity):
    if outcome.changed:
        messages.success(request, done.format(changed=outcome.changed, identity=identity))
    else:
        messages.info(request, f"Nothing in '{identity}' needed this action; nothing was changed.")
    if outcome.active:
        messages.warning(
            request,
            f"{outcome.active} recipient(s) are being delivered right now and were left as they are. Try again in "
            f"a moment.",
        )


def _run(request, target, act, done):
    try:
        outcome = act()
    except QueueError as error:
        messages.error(request, str(error))
    else:
        _report(request, outcome, done, target.identity)


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(roles.MANAGE_QUEUES, raise_exception=True)
def queue_action(request, identity, action):
    if action not in QUEUE_ACTIONS:
        raise Http404(f"There is no queue action '{action}'.")
    queue = _queue_or_404(identity)
    question, act, done = QUEUE_ACTIONS[action]
    if request.method == "POST":
        _run(request, queue, lambda: act(Caller.web(request), queue), done)
        return redirect(_back_to(queue.identity))
    return render(
        request,
        "ops/queues/confirm.html",
        {
            "question": question.format(queue.identity),
            "target": queue,
            "form_url": reverse("ops:queue-action", args=[queue.identity, action]),
            "cancel_url": _queue_url(queue.identity),
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(roles.MANAGE_QUEUES, raise_exception=True)
def message_action(request, identity, message_id, action):
    if action not in MESSAGE_ACTIONS:
        raise Http404(f"There is no message action '{action}'.")
    message = _message_or_404(identity, message_id)
    question, act, done = MESSAGE_ACTIONS[action]
    if request.method == "POST":
        options = {"with_ndr": request.POST.get("with_ndr") != "no"} if action == "remove" else {}
        _run(request, message, lambda: act(Caller.web(request), message, **options), done)
        return redirect(_back_to(message.queue.identity))
    return render(
        request,
        "ops/queues/confirm.html",
        {
            "question": question.format(message.identity),
            "target": message,
            "form_url": reverse("ops:message-action", args=[message.queue.identity, message.pk, action]),
            "cancel_url": _queue_url(message.queue.identity),
            "removing": action == "remove",
        },
    )
