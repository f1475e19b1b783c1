from django.urls import path, register_converter

from sendconn.transport.models import MAX_ROW_ID

from .views import dashboard, protocol_logs, queues, tracking, verify


class RowIdConverter:
    """A row id: digits within the id columns' range, so that a larger number is a 404 rather than an
    OverflowError from the database driver."""

    regex = "[0-9]{1,19}"

    def to_python(self, value):
        if int(value) > MAX_ROW_ID:
            raise ValueError(value)  # the pattern doesn't match: 404
        return int(value)

    def to_url(self, value):
        return str(value)


register_converter(RowIdConverter, "id")

app_name = "ops"
urlpatterns = [
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    # Verify delivery (per connector) and its runs
    path("connectors/<uuid:guid>/verify/", verify.verify_connector, name="verify"),
    path("verifications/<id:run_id>/", verify.verification_run, name="verification"),
    path("verifications/<id:run_id>/status/", verify.verification_status, name="verification-status"),
    path("connectors/<uuid:guid>/verifications/", verify.verification_history, name="verification-history"),
    # Queue viewer. Identities contain backslashes (EX01\contoso.com, EX01\contoso.com\1234): <path:> keeps
    # them whole, so the action patterns come before the queue page's.
    path("queues/", queues.queue_list, name="queues"),
    path("queues/<path:identity>/messages/<id:message_id>/<slug:action>/", queues.message_action,
         name="message-action"),
    path("queues/<path:identity>/actions/<slug:action>/", queues.queue_action, name="queue-action"),
    path("queues/<path:identity>/", queues.queue_detail, name="queue"),
    # Message tracking
    path("tracking/", tracking.search, name="tracking"),
    path("tracking/messages/<id:message_pk>/", tracking.message, name="tracking-message"),
    # Protocol logs
    path("protocol-logs/", protocol_logs.file_list, name="protocol-logs"),
    path("protocol-logs/files/<str:file_name>/", protocol_logs.download, name="protocol-log-download"),
    path("protocol-logs/<str:day>/", protocol_logs.day_sessions, name="protocol-log-day"),
    path("protocol-logs/<str:day>/sessions/<str:session_id>/", protocol_logs.session, name="protocol-log-session"),
]
