from django.urls import path

from . import views

app_name = "verification"
urlpatterns = [
    path("connectors/<uuid:guid>/verify/", views.verify_connector, name="verify"),
    path("verifications/<int:run_id>/", views.verification_run, name="verification"),
    path("verifications/<int:run_id>/status/", views.verification_status, name="verification-status"),
    path("connectors/<uuid:guid>/verifications/", views.verification_history, name="verification-history"),
]
