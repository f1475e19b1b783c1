"""Submitting wizard pages and edit tabs with the Django test client the way a browser without JavaScript does:
every field as shown on the page, plus what the admin changed, plus the button that was clicked."""

import re

from django import forms
from django.urls import reverse

WIZARD_URL = reverse("connectors:new")


def shown_values(form):
    """POST data for ``form`` as the page shows it (checked boxes send "on"; password boxes come back empty)."""
    data = {}
    for name, value in form.current_values().items():
        widget = form.fields[name].widget
        if isinstance(widget, forms.PasswordInput) or value is None:
            continue
        if isinstance(widget, forms.CheckboxInput):
            if value:
                data[form.add_prefix(name)] = "on"
        else:
            data[form.add_prefix(name)] = value
    return data


def submit(form, **fields):
    """POST data of ``form`` as shown, with ``fields`` (unprefixed names) changed; ``False`` unticks a checkbox."""
    data = shown_values(form)
    for name, value in fields.items():
        data.pop(form.add_prefix(name), None)
        if value is not False:
            data[form.add_prefix(name)] = value
    return data


class WizardRun:
    """One run of the New Send connector wizard (one browser tab)."""

    def __init__(self, client):
        self.client = client
        self.response = client.get(WIZARD_URL)
        assert self.response.status_code == 200, self.response.status_code
        self.instance = re.search(r'name="wizard_instance" value="([^"]+)"', self.response.content.decode()).group(1)

    @property
    def form(self):
        return self.response.context["form"]

    @property
    def step(self):
        return self.response.context["wizard"]["steps"].current

    @property
    def errors(self):
        return {name: list(messages) for name, messages in self.form.errors.items()}

    def _post(self, data):
        payload = {f"new_send_connector_{self.instance}-current_step": self.step, "wizard_instance": self.instance}
        payload.update(data)
        self.response = self.client.post(WIZARD_URL, payload)
        return self.response

    def next(self, **fields):
        """Change ``fields`` on this page and click Next (Finish on the last page)."""
        return self._post(submit(self.form, **fields))

    def back(self, **fields):
        previous = self.response.context["wizard"]["steps"].prev
        return self._post({**submit(self.form, **fields), "wizard_goto_step": previous})

    def click(self, button, value="1", **fields):
        """Change ``fields`` and click a list button (Save in a dialog, Edit, Remove, Add, OK)."""
        return self._post({**submit(self.form, **fields), button: value})

    def cancel(self):
        return self._post({**submit(self.form), "wizard_cancel": "1"})
