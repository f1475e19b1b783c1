"""How forms render: Django's own form templates, with the console's markup for one field (``templates/_field.html``),
so ``{{ form.name.as_field_group }}`` gives the label, help text, widget and errors every page shows."""

from django.forms.renderers import TemplatesSetting


class ConsoleFormRenderer(TemplatesSetting):
    field_template_name = "_field.html"
