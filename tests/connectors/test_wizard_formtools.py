"""What the wizard takes from django-formtools beyond its public API, checked against the installed version.

formtools caches a request's step conditions and cleaned data in private attributes and offers no public way to
drop them; the wizard does (``_forget_cached_steps``) after Back stores a page. It also finds its runs in the
session by the storage's key. pyproject.toml pins django-formtools to the minor version these tests passed with.
"""

from importlib.metadata import version

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.http import QueryDict
from django.test import RequestFactory
from formtools.wizard.storage import get_storage

from sendconn.connectors.wizard import PREFIX, NewSendConnectorWizard, SealedSessionStorage

pytestmark = pytest.mark.django_db

CHANGED = (
    f"django-formtools {version('django-formtools')} no longer works as NewSendConnectorWizard expects "
    "(sendconn/connectors/wizard.py): {what}. Update the wizard, then the pin in pyproject.toml."
)


def wizard_view():
    request = RequestFactory().post("/connectors/new/")
    request.session = SessionStore()
    view = NewSendConnectorWizard(**NewSendConnectorWizard.get_initkwargs())
    view.setup(request)
    view.instance_id = "a" * 16
    view.prefix = view.get_prefix(request)
    view.storage = get_storage(view.storage_name, view.prefix, request)
    return view


def store(view, step, text):
    view.storage.set_step_data(step, QueryDict(text))


def test_forgetting_the_cached_steps_drops_every_cache_formtools_keeps():
    view = wizard_view()
    own = set(vars(view))
    store(view, "name", "name-name=Relay&name-usage=Custom")
    store(view, "network", "network-routing=mx")

    assert "authentication" not in view.get_form_list() and view.get_cleaned_data_for_step("name")
    cached = set(vars(view)) - own
    expected = {"_resolved_form_list", "_cache_signature", "_cleaned_data_cache_name", "_cleaned_data_cache_network"}
    assert cached == expected, CHANGED.format(what=f"its per-request caches are now {sorted(cached)}")

    store(view, "network", "network-routing=smart_hosts&network-smart_hosts=relay.contoso.com")
    assert "authentication" not in view.get_form_list()  # still the cached answer
    view._forget_cached_steps()
    assert set(vars(view)) == own, CHANGED.format(what="_forget_cached_steps leaves caches behind")
    assert "authentication" in view.get_form_list(), CHANGED.format(what="the step conditions stay cached")


def test_the_wizards_runs_are_found_in_the_session_by_the_storage_key():
    view = wizard_view()
    view.storage.extra_data = {"started": 1.0}
    key = f"wizard_{PREFIX}_{view.instance_id}"
    assert view.storage.prefix == key, CHANGED.format(what=f"the session key is now {view.storage.prefix!r}")
    assert view.request.session[key][SealedSessionStorage.extra_data_key] == {"started": 1.0}
