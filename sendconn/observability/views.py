"""/metrics for Prometheus (from trusted networks or with the bearer token), /healthz and /readyz for probes.

None of them needs a session: a scraper or a kubelet has no login.
"""

import hmac
import ipaddress

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from . import health, metrics


def may_read_metrics(request):
    """From a network of SENDCONN_METRICS_NETWORKS, or with ``Authorization: Bearer <SENDCONN_METRICS_TOKEN>``."""
    token = settings.SENDCONN_METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "").split("%")[0])
    except ValueError:
        return False
    address = getattr(address, "ipv4_mapped", None) or address
    return any(address in network for network in settings.SENDCONN_METRICS_NETWORKS)


@login_not_required
@require_safe
@never_cache
def metrics_view(request):
    if not may_read_metrics(request):
        if settings.SENDCONN_METRICS_TOKEN:
            response = HttpResponse(
                "401 Unauthorized: send the metrics bearer token.\n", status=401, content_type="text/plain"
            )
            response["WWW-Authenticate"] = 'Bearer realm="sendconn metrics"'
            return response
        return HttpResponse(
            "403 Forbidden: /metrics answers the networks in SENDCONN_METRICS_NETWORKS.\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


@login_not_required
@require_safe
@never_cache
def healthz(request):
    """The process answers requests."""
    return HttpResponse("ok\n", content_type="text/plain")


@login_not_required
@require_safe
@never_cache
def readyz(request):
    """200 when the database answers with every migration applied and the broker answers; 503 otherwise."""
    checks = health.readiness()
    ready = all(problem is None for _, problem in checks)
    text = "".join(f"{name}: {problem or 'ok'}\n" for name, problem in checks)
    return HttpResponse(text, status=200 if ready else 503, content_type="text/plain")
