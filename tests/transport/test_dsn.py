import email
from datetime import UTC, datetime, timedelta
from email import policy

import pytest

from sendconn.transport.dsn import (
    BOUNCE_SIZE_LIMIT,
    RecipientStatus,
    build_delay_notification,
    build_ndr,
    should_send_ndr,
)

ARRIVED = datetime(2025, 1, 6, 9, 58, 12, tzinfo=UTC)
ATTEMPTED = datetime(2025, 1, 6, 10, 0, 0, tzinfo=UTC)
ORIGINAL = (
    b"From: Alice <alice@contoso.test>\r\n"
    b"To: bob@fabrikam.test, carol@nomx.test\r\n"
    b"Subject: Quarterly results\r\n"
    b"Message-ID: <q4-results@contoso.test>\r\n"
    b"References: <q3-results@contoso.test>\r\n"
    b"\r\n"
    b"Numbers attached.\r\n"
)
USER_UNKNOWN = RecipientStatus(
    address="bob@fabrikam.test",
    status="5.1.1",
    action="failed",
    diagnostic="smtp; 550 5.1.1 <bob@fabrikam.test>: Recipient address rejected: User unknown",
    remote_mta="mx1.fabrikam.test",
    connector_name="To Internet",
    last_attempt_at=ATTEMPTED,
)
NULL_MX = RecipientStatus(
    address="carol@nomx.test",
    status="5.1.10",
    action="failed",
    diagnostic="550 5.1.10 Domain nomx.test does not accept mail (null MX)",
    remote_mta=None,
    connector_name="To Internet",
    last_attempt_at=None,
)


def parse(data):
    return email.message_from_bytes(data, policy=policy.default)


def ndr(original=ORIGINAL, recipients=(USER_UNKNOWN, NULL_MX), **kwargs):
    return build_ndr(
        original,
        envelope_sender="alice@contoso.test",
        reporting_mta="ex01.contoso.test",
        recipients=list(recipients),
        arrival_date=ARRIVED,
        **kwargs,
    )


def text_of(part):
    return part.get_content().replace("\r\n", "\n")


def fields(block):
    return {name: value.strip() for name, value in block.items()}


def test_ndr_is_a_multipart_report_with_three_parts():
    report = parse(ndr())

    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert [part.get_content_type() for part in report.iter_parts()] == [
        "text/plain",
        "message/delivery-status",
        "message/rfc822",
    ]
    assert not report.defects


def test_ndr_headers_address_the_sender_and_thread_with_the_original():
    report = parse(ndr())

    assert report["From"].addresses[0].display_name == "Mail Delivery System"
    assert report["From"].addresses[0].addr_spec == "postmaster@ex01.contoso.test"
    assert report["To"] == "alice@contoso.test"
    assert report["Subject"] == "Undeliverable: Quarterly results"
    assert report["Auto-Submitted"] == "auto-replied"
    assert report["In-Reply-To"] == "<q4-results@contoso.test>"
    assert report["References"] == "<q3-results@contoso.test> <q4-results@contoso.test>"
    assert report["Message-ID"].endswith("@ex01.contoso.test>")
    assert report["Date"].datetime.tzinfo is not None


def test_postmaster_address_can_be_given():
    report = parse(ndr(postmaster_address="mailer-daemon@contoso.test"))

    assert report["From"].addresses[0].addr_spec == "mailer-daemon@contoso.test"


def test_delivery_status_has_per_message_and_per_recipient_fields():
    status = list(parse(ndr()).iter_parts())[1]
    per_message, bob, carol = status.get_payload()

    assert fields(per_message) == {
        "Reporting-MTA": "dns; ex01.contoso.test",
        "Arrival-Date": "Mon, 06 Jan 2025 09:58:12 +0000",
    }
    assert fields(bob) == {
        "Final-Recipient": "rfc822; bob@fabrikam.test",
        "Action": "failed",
        "Status": "5.1.1",
        "Remote-MTA": "dns; mx1.fabrikam.test",
        "Diagnostic-Code": "smtp; 550 5.1.1 <bob@fabrikam.test>: Recipient address rejected: User unknown",
        "Last-Attempt-Date": "Mon, 06 Jan 2025 10:00:00 +0000",
    }
    # A bare reply gets the smtp diagnostic type; no Remote-MTA or attempt date when none happened.
    assert fields(carol) == {
        "Final-Recipient": "rfc822; carol@nomx.test",
        "Action": "failed",
        "Status": "5.1.10",
        "Diagnostic-Code": "smtp; 550 5.1.10 Domain nomx.test does not accept mail (null MX)",
    }


def test_human_readable_part_names_recipient_code_answer_and_connector():
    text = text_of(list(parse(ndr()).iter_parts())[0])

    assert text.startswith("Delivery has failed to these recipients or groups:")
    assert "bob@fabrikam.test\nThe email address wasn't found at the recipient's domain." in text
    assert "Diagnostic information for administrators:" in text
    assert "Generating server: ex01.contoso.test" in text
    assert "Remote server: mx1.fabrikam.test" in text
    assert "Remote server returned '550 5.1.1 <bob@fabrikam.test>: Recipient address rejected: User unknown'" in text
    assert "Status: 5.1.1" in text
    assert "Send connector: To Internet" in text
    assert "ex01.contoso.test returned '550 5.1.10 Domain nomx.test does not accept mail (null MX)'" in text


def test_original_is_attached_whole_under_the_size_limit():
    attached = list(parse(ndr()).iter_parts())[2]
    original = attached.get_content()

    assert original["Message-ID"] == "<q4-results@contoso.test>"
    assert original.get_content().strip() == "Numbers attached."


def test_only_the_original_headers_above_the_size_limit():
    big = ORIGINAL + b"x" * 76 + b"\r\n" + b"y" * BOUNCE_SIZE_LIMIT
    headers = list(parse(ndr(original=big)).iter_parts())[2]

    assert headers.get_content_type() == "text/rfc822-headers"
    content = headers.get_content()
    assert "Message-ID: <q4-results@contoso.test>" in content
    assert "Numbers attached." not in content
    assert "yyyy" not in content


def test_size_limit_is_adjustable():
    part = list(parse(ndr(size_limit=len(ORIGINAL) - 1)).iter_parts())[2]

    assert part.get_content_type() == "text/rfc822-headers"


def test_output_uses_crlf_line_ends_even_for_an_lf_original():
    data = ndr(original=ORIGINAL.replace(b"\r\n", b"\n"))

    assert b"\n" not in data.replace(b"\r\n", b"")


def test_unicode_subject_survives():
    original = ORIGINAL.replace(b"Quarterly results", "Résultats trimestriels".encode())

    assert parse(ndr(original=original))["Subject"] == "Undeliverable: Résultats trimestriels"


def test_original_without_subject_or_message_id():
    report = parse(ndr(original=b"From: alice@contoso.test\r\n\r\nHi\r\n"))

    assert report["Subject"] == "Undeliverable:"
    assert report["In-Reply-To"] is None
    assert report["References"] is None


@pytest.mark.parametrize("sender", ["", "<>", " <> ", None])
def test_never_bounce_a_bounce(sender):
    assert should_send_ndr(sender) is False
    with pytest.raises(ValueError, match="null sender"):
        build_ndr(
            ORIGINAL,
            envelope_sender=sender,
            reporting_mta="ex01.contoso.test",
            recipients=[USER_UNKNOWN],
            arrival_date=ARRIVED,
        )


def test_a_real_sender_gets_an_ndr():
    assert should_send_ndr("alice@contoso.test") is True
    assert should_send_ndr("<alice@contoso.test>") is True


def test_delay_notification():
    retry_until = ARRIVED + timedelta(days=2)
    delayed = RecipientStatus(
        address="bob@fabrikam.test",
        status="4.4.1",
        action="delayed",
        diagnostic="smtp; 451 4.4.0 DNS query failed",
        remote_mta=None,
        connector_name="To Internet",
        last_attempt_at=ATTEMPTED,
        will_retry_until=retry_until,
    )
    report = parse(
        build_delay_notification(
            ORIGINAL,
            envelope_sender="alice@contoso.test",
            reporting_mta="ex01.contoso.test",
            recipients=[delayed],
            arrival_date=ARRIVED,
        )
    )
    text, status, headers = report.iter_parts()

    assert report.get_param("report-type") == "delivery-status"
    assert report["Subject"] == "Delivery delayed: Quarterly results"
    assert "Delivery is delayed to these recipients or groups:" in text.get_content()
    assert "until Wed, 08 Jan 2025 09:58:12 +0000" in text.get_content()
    assert "Send connector: To Internet" in text.get_content()
    recipient = fields(status.get_payload()[1])
    assert recipient["Action"] == "delayed"
    assert recipient["Status"] == "4.4.1"
    assert recipient["Will-Retry-Until"] == "Wed, 08 Jan 2025 09:58:12 +0000"
    assert recipient["Diagnostic-Code"] == "smtp; 451 4.4.0 DNS query failed"
    # A delay notice carries the headers only, however small the message.
    assert headers.get_content_type() == "text/rfc822-headers"


def test_action_must_match_the_kind_of_notice():
    with pytest.raises(ValueError, match="failed"):
        ndr(recipients=[USER_UNKNOWN, RecipientStatus("x@y.test", "4.4.1", "delayed", "451 x", None, "c", None)])


def test_recipient_status_is_validated():
    with pytest.raises(ValueError, match="enhanced status code"):
        RecipientStatus("x@y.test", "550", "failed", "550 x", None, "c", None)
    with pytest.raises(ValueError, match="failed or delayed"):
        RecipientStatus("x@y.test", "5.1.1", "bounced", "550 x", None, "c", None)
