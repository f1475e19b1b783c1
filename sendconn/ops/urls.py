from django.urls import path

from .views import dashboard, protocol_logs, queues, tracking, verify

app_name = "ops"
urlpatterns = [
    path("dashboard/", dashboard.placeholder, name="dashboard"),
    # Verify delivery (per connector) and its runs
    path("connectors/<uuid:guid>/verify/", verify.placeholder, name="verify"),
    path("verifications/<int:run_id>/", verify.placeholder, name="verification"),
    path("verifications/<int:run_id>/status/", verify.placeholder, name="verification-status"),
    path("connectors/<uuid:guid>/verifications/", verify.placeholder, name="verification-history"),
    # Queue viewer
    path("queues/", queues.placeholder, name="queues"),
    path("queues/<str:identity>/", queues.placeholder, name="queue"),
    # Message tracking
    path("tracking/", tracking.placeholder, name="tracking"),
    path("tracking/messages/<int:message_pk>/", tracking.placeholder, name="tracking-message"),
    # Protocol logs
    path("protocol-logs/", protocol_logs.placeholder, name="protocol-logs"),
]
