from django.urls import path

from .views import dashboard, protocol_logs, queues, tracking

app_name = "ops"
urlpatterns = [
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    # Queue viewer. Identities contain backslashes (EX01\contoso.com, EX01\contoso.com\1234): <path:> keeps
    # them whole, so the action patterns come before the queue page's.
    path("queues/", queues.queue_list, name="queues"),
    path(
        "queues/<path:identity>/messages/<int:message_id>/<slug:action>/", queues.message_action, name="message-action"
    ),
    path("queues/<path:identity>/actions/<slug:action>/", queues.queue_action, name="queue-action"),
    path("queues/<path:identity>/", queues.queue_detail, name="queue"),
    # Message tracking
    path("tracking/", tracking.search, name="tracking"),
    path("tracking/messages/<int:message_pk>/", tracking.message, name="tracking-message"),
    # Protocol logs
    path("protocol-logs/", protocol_logs.file_list, name="protocol-logs"),
    path("protocol-logs/files/<str:file_name>/", protocol_logs.download, name="protocol-log-download"),
    path("protocol-logs/<str:day>/", protocol_logs.day_sessions, name="protocol-log-day"),
    path("protocol-logs/<str:day>/sessions/<str:session_id>/", protocol_logs.session, name="protocol-log-session"),
]
