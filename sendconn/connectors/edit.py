# Placeholder until the edit dialog lands (helper A replaces this file).
from django.http import Http404


def edit_connector(request, guid, tab):
    raise Http404
