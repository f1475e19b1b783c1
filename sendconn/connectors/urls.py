from django.urls import path

from . import edit, views, wizard

app_name = "connectors"
urlpatterns = [
    path("", views.connector_list, name="list"),
    path("new/", wizard.NewSendConnectorWizard.as_view(), name="new"),
    path("<uuid:guid>/", views.connector_detail, name="detail"),
    path("<uuid:guid>/edit/<str:tab>/", edit.edit_connector, name="edit"),
    path("<uuid:guid>/enable/", views.enable_connector, name="enable"),
    path("<uuid:guid>/disable/", views.disable_connector, name="disable"),
    path("<uuid:guid>/remove/", views.remove_connector, name="remove"),
    path("<uuid:guid>/audit/", views.connector_audit_log, name="audit"),
]
