# Placeholder until the list/details work lands (helper B replaces this file).
from django.http import Http404


def connector_list(request):
    raise Http404


connector_detail = enable_connector = disable_connector = remove_connector = connector_audit_log = (
    lambda request, guid: (_ for _ in ()).throw(Http404())
)
