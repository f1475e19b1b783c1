# Placeholder until the wizard lands (helper A replaces this file).
from django.http import Http404
from django.views import View


class NewSendConnectorWizard(View):
    def get(self, request):
        raise Http404
