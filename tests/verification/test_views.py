"""The Verify delivery pages: the recipients form, the run page and its polled fragment, history, the list column."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from sendconn.connectors.services import Caller
from sendconn.verification.models import VerificationRun
from sendconn.verification.runner import run_verification
from sendconn.verification.services import start_verification
from tests.peers import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def connector(make_connector):
    """Smart host 127.0.0.7 on a port nobody listens on: a run fails at Connection at once, with no DNS query."""
    return make_connector("To relay", dns_routing_enabled=False, smart_hosts=["127.0.0.7"], port=free_port("127.0.0.7"))


def finished_run(connector, by="orgadmin", recipients="julia@fabrikam.test"):
    run = start_verification(Caller(by, "Web"), connector, recipients)
    return run_verification(run.pk)


def verify_url(connector):
    return reverse("verification:verify", args=[connector.guid])


def run_url(run):
    return reverse("verification:verification", args=[run.pk])


def status_url(run):
    return reverse("verification:verification-status", args=[run.pk])


# --- permissions ------------------------------------------------------------------------------------------------


def test_view_only_may_not_verify(helpdesk_client, connector):
    assert helpdesk_client.get(verify_url(connector)).status_code == 403
    response = helpdesk_client.post(verify_url(connector), {"recipients": "julia@fabrikam.test"})
    assertContains(response, "Access denied", status_code=403)
    assert not VerificationRun.objects.exists()


def test_view_only_sees_runs_and_history_but_no_verify_button(helpdesk_client, connector):
    run = finished_run(connector)

    assertContains(helpdesk_client.get(run_url(run)), "Validation result")
    assertContains(helpdesk_client.get(reverse("verification:verification-history", args=[connector.guid])), "orgadmin")
    for page in (run_url(run), reverse("connectors:detail", args=[connector.guid]), reverse("connectors:list")):
        assertNotContains(helpdesk_client.get(page), verify_url(connector))


def test_signed_in_users_without_a_role_group_see_nothing(client, nobody, connector):
    client.force_login(nobody)
    run = finished_run(connector)
    for url in (
        verify_url(connector),
        run_url(run),
        status_url(run),
        reverse("verification:verification-history", args=[connector.guid]),
    ):
        assert client.get(url).status_code == 403


def test_signed_out_users_are_sent_to_sign_in(client, connector):
    response = client.get(verify_url(connector))
    assertRedirects(response, f"{reverse('login')}?next={verify_url(connector)}", fetch_redirect_response=False)


@pytest.mark.parametrize("user_client", ["admin_client", "server_client"])
def test_organization_and_server_management_get_the_button(request, user_client, connector):
    user_client = request.getfixturevalue(user_client)
    for page in (
        reverse("connectors:detail", args=[connector.guid]),
        f"{reverse('connectors:list')}?selected={connector.guid}",
    ):
        assertContains(
            user_client.get(page), f'<a class="button" href="{verify_url(connector)}">Verify delivery</a>', html=True
        )


# --- starting -----------------------------------------------------------------------------------------------


def test_form_is_prefilled_with_the_recipients_used_last(admin_client, connector):
    assert admin_client.get(verify_url(connector)).context["form"]["recipients"].value() == ""  # nothing yet

    finished_run(connector, recipients="julia@fabrikam.test, kim@fabrikam.test")

    response = admin_client.get(verify_url(connector))
    assertContains(response, "julia@fabrikam.test, kim@fabrikam.test</textarea>")
    assertContains(response, "To relay")


def test_post_starts_a_run_and_shows_its_page(server_client, connector, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = server_client.post(verify_url(connector), {"recipients": "julia@fabrikam.test; kim@fabrikam.test"})

    run = VerificationRun.objects.get()
    assertRedirects(response, run_url(run), fetch_redirect_response=False)
    assert (run.requested_by, run.recipients, run.status) == (
        "serveradmin",
        ["julia@fabrikam.test", "kim@fabrikam.test"],
        "Running",
    )
    assert len(callbacks) == 1  # the task is sent once the run is committed


def test_bad_recipients_are_named_and_nothing_starts(admin_client, connector):
    response = admin_client.post(verify_url(connector), {"recipients": "julia, kim@fabrikam.test"})

    assertContains(response, "&#x27;julia&#x27; isn&#x27;t a valid SMTP address.")
    assertContains(response, "julia, kim@fabrikam.test</textarea>")
    assert not VerificationRun.objects.exists()


def test_a_connector_without_source_servers_says_so(admin_client, connector):
    connector.source_transport_servers.clear()

    response = admin_client.post(verify_url(connector), {"recipients": "julia@fabrikam.test"})

    assertContains(response, "has no source server to send the test message from")
    assert not VerificationRun.objects.exists()


def test_post_needs_the_csrf_token(org_admin, connector):
    client = Client(enforce_csrf_checks=True)
    client.force_login(org_admin)

    response = client.post(verify_url(connector), {"recipients": "julia@fabrikam.test"})

    assert response.status_code == 403
    assert not VerificationRun.objects.exists()


def test_unknown_connector_or_run_is_404(admin_client):
    assert (
        admin_client.get(reverse("verification:verify", args=["00000000-0000-0000-0000-000000000000"])).status_code
        == 404
    )
    assert admin_client.get(reverse("verification:verification", args=[999])).status_code == 404
    for run_id in (2**63, 10**25):  # beyond the 64-bit id column: no run, not an OverflowError
        assert admin_client.get(f"/verifications/{run_id}/").status_code == 404
        assert admin_client.get(f"/verifications/{run_id}/status/").status_code == 404


# --- the run page and its fragment ------------------------------------------------------------------------------


def test_running_run_polls_its_status_fragment_and_refreshes_without_javascript(admin_client, connector):
    run = start_verification(Caller("orgadmin", "Web"), connector, "julia@fabrikam.test")

    response = admin_client.get(run_url(run))

    assertContains(response, f'hx-get="{status_url(run)}"')
    assertContains(response, 'hx-trigger="every 1s"')
    assertContains(response, '<noscript><meta http-equiv="refresh" content="2"></noscript>', html=True)
    assertContains(response, "Waiting for the transport service on EX01")
    assert re.findall(r'<td class="step-(\w+)">', response.content.decode()) == ["pending"] * 6


def test_status_fragment_for_htmx_and_the_whole_page_without_it(admin_client, connector):
    run = start_verification(Caller("orgadmin", "Web"), connector, "julia@fabrikam.test")

    fragment = admin_client.get(status_url(run), headers={"HX-Request": "true"})
    assertContains(fragment, 'id="verification-status"')
    assertContains(fragment, 'hx-trigger="every 1s"')
    assertNotContains(fragment, "<html")

    assertRedirects(admin_client.get(status_url(run)), run_url(run))


def test_finished_fragment_stops_polling_and_shows_the_failure_and_transcript(admin_client, connector):
    run = finished_run(connector)

    fragment = admin_client.get(status_url(run), headers={"HX-Request": "true"})
    assertNotContains(fragment, "hx-trigger")
    assertContains(fragment, '<span class="run-failed">Failed</span>', html=True)
    assertContains(fragment, "Connection failed: <strong>450 4.4.316 Connection refused</strong>", html=True)
    assertContains(fragment, "Nothing accepts connections on 127.0.0.7:")
    assertContains(fragment, "<summary>SMTP transcript</summary>", html=True)
    assertContains(fragment, "attempting to connect")
    assert re.findall(r'<td class="step-(\w+)">', fragment.content.decode()) == [
        "succeeded",
        "failed",
        "skipped",
        "skipped",
        "skipped",
        "skipped",
    ]

    page = admin_client.get(run_url(run))
    assertNotContains(page, "http-equiv")
    assertContains(page, "Verify again")


def test_verify_pages_sit_under_mail_flow_and_send_connectors(helpdesk_client, connector):
    run = finished_run(connector)
    list_url = reverse("connectors:list")

    for page in (run_url(run), reverse("verification:verification-history", args=[connector.guid])):
        response = helpdesk_client.get(page)
        assertContains(response, f'<a href="{list_url}" aria-current="page">mail flow</a>', html=True)
        assertContains(response, f'<li><a href="{list_url}" aria-current="page">send connectors</a></li>', html=True)


# --- history and the connector list --------------------------------------------------------------------------


def test_history_lists_the_runs_newest_first(helpdesk_client, connector):
    first = finished_run(connector, by="orgadmin")
    second = finished_run(connector, by="serveradmin")

    response = helpdesk_client.get(reverse("verification:verification-history", args=[connector.guid]))

    body = response.content.decode()
    assert body.index(run_url(second)) < body.index(run_url(first))
    assertContains(response, "Connection: 450 4.4.316 Connection refused", count=2)


def test_list_shows_each_connectors_last_verification(helpdesk_client, connector, make_connector):
    make_connector("Never verified")
    finished_run(connector, by="serveradmin")
    passed = finished_run(connector, by="orgadmin")
    VerificationRun.objects.filter(pk=passed.pk).update(status="Succeeded", error="")

    response = helpdesk_client.get(reverse("connectors:list"))

    assertContains(response, '<th scope="col">LAST VERIFICATION</th>', html=True)
    body = response.content.decode()
    assert re.search(
        r'<td class="run-succeeded">Passed\s*<small><time[^>]*>[\d: -]+</time> by orgadmin</small></td>', body
    )
    assertContains(response, '<td class="step-pending">Never</td>', html=True)
