# Placeholder until the tracking screens land.
from django.http import Http404


def placeholder(request, *args, **kwargs):
    raise Http404
