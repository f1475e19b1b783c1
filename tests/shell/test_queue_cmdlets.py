"""Get-Queue, Get-Message and the queue actions through the shell's runner: output, -Filter, exit codes."""

import json

import pytest
from django.utils import timezone

from sendconn.connectors.models import AdminAuditLogEntry
from sendconn.transport.models import Message, Recipient, RecipientStatus
from tests.factories import DEFERRED, SENDER, UNREACHABLE, queued, retry_values

pytestmark = pytest.mark.usefixtures("tracking_log_dir", "woken")


@pytest.fixture
def queues(make_connector):
    """contoso.test: 2 messages in Retry; fabrikam.test: 1 Ready; Unreachable: 1."""
    make_connector("To internet", ["*"])
    first = queued("a@contoso.test", "b@contoso.test", **retry_values())
    second = queued("c@contoso.test", sender="kim@fabrikam.com", **retry_values())
    third = queued("d@fabrikam.test")
    lost = queued("e@nowhere.test", **UNREACHABLE)
    return {"first": first, "second": second, "third": third, "lost": lost}


def test_get_queue_default_table(cmdlet, queues):
    result = cmdlet("Get-Queue")
    assert (result.status, result.err) == (0, "")
    assert result.out.splitlines() == [
        "",
        "Identity           DeliveryType         Status MessageCount Velocity NextHopDomain",
        "--------           ------------         ------ ------------ -------- -------------",
        "EX01\\contoso.test  DnsConnectorDelivery Retry             2   -0.033 contoso.test",
        "EX01\\fabrikam.test DnsConnectorDelivery Ready             1   -0.017 fabrikam.test",
        "EX01\\Submission    Undefined            Ready             0        0",
        "EX01\\Unreachable   Unreachable          Ready             1   -0.017",
        "",
    ]


def test_get_queue_identity_format_list(cmdlet, queues):
    result = cmdlet("Get-Queue -Identity EX01\\contoso.test | Format-List")
    assert result.status == 0
    lines = result.out.splitlines()
    assert "Identity         : EX01\\contoso.test" in lines
    assert "NextHopConnector : To internet" in lines
    assert f"LastError        : {DEFERRED}" in lines
    assert any(line.startswith("NextRetryTime    : 20") and line.endswith("Z") for line in lines)


@pytest.mark.parametrize(
    "filter_text, identities",
    [
        ("Status -eq 'Retry'", ["EX01\\contoso.test"]),
        ("MessageCount -gt 1", ["EX01\\contoso.test"]),
        ("MessageCount -ge 1 -and NextHopDomain -like '*fabrikam*'", ["EX01\\fabrikam.test"]),
        ("DeliveryType -ne 'DnsConnectorDelivery' -and -not (MessageCount -eq 0)", ["EX01\\Unreachable"]),
        ("(Status -eq 'retry') -or Identity -like '*\\Submission'", ["EX01\\contoso.test", "EX01\\Submission"]),
    ],
)
def test_get_queue_filter(cmdlet, queues, filter_text, identities):
    result = cmdlet(f'Get-Queue -Filter "{filter_text}" | ConvertTo-Json -Compress')
    assert result.status == 0, result.err
    found = json.loads(result.out)
    found = found if isinstance(found, list) else [found]
    assert [queue["Identity"] for queue in found] == identities


@pytest.mark.parametrize(
    "line, error",
    [
        ("Get-Queue -Filter \"Status -eqq 'Retry'\"", "Invalid filter syntax"),
        ("Get-Queue -Filter \"Colour -eq 'red'\"", '"Colour" isn\'t a property that can be filtered on'),
        ('Get-Queue -Filter "MessageCount -gt lots"', "isn't a number"),
        ("Get-Queue -Identity EX01\\nowhere.test", "object 'EX01\\nowhere.test' couldn't be found"),
        ("Get-Queue -Identity EX01\\contoso.test -Filter \"Status -eq 'Retry'\"", "Parameter set cannot be resolved"),
    ],
)
def test_get_queue_errors_exit_1(cmdlet, queues, line, error):
    result = cmdlet(line)
    assert (result.status, result.out) == (1, "")
    assert result.err.startswith("Get-Queue : ")
    assert error in result.err


def test_get_message_default_table_and_queue(cmdlet, queues):
    first, second = queues["first"], queues["second"]
    result = cmdlet("Get-Message -Queue EX01\\contoso.test")
    assert (result.status, result.err) == (0, "")
    lines = result.out.splitlines()
    assert lines[1].split() == ["Identity", "FromAddress", "Status", "Queue", "Subject"]
    assert lines[3].split() == [
        f"EX01\\contoso.test\\{first.pk}",
        SENDER,
        "Retry",
        "EX01\\contoso.test",
        "Quarterly",
        "report",
    ]
    assert lines[4].split()[:3] == [f"EX01\\contoso.test\\{second.pk}", "kim@fabrikam.com", "Retry"]
    assert len(lines) == 6


def test_get_message_identity_format_list(cmdlet, queues):
    first = queues["first"]
    result = cmdlet(f"Get-Message EX01\\contoso.test\\{first.pk} | Format-List")
    assert result.status == 0, result.err
    lines = result.out.splitlines()
    assert f"Identity          : EX01\\contoso.test\\{first.pk}" in lines
    assert "Recipients        : {a@contoso.test, b@contoso.test}" in lines
    assert f"LastError         : {DEFERRED}" in lines
    assert "RetryCount        : 1" in lines
    assert "MessageSourceName : SMTP" in lines
    assert any(line.startswith("Size              : ") and "bytes)" in line for line in lines)


@pytest.mark.parametrize(
    "filter_text, senders",
    [
        ("FromAddress -like '*@fabrikam.com'", ["kim@fabrikam.com"]),
        ("Status -eq 'Ready'", [SENDER, SENDER]),
        ("Subject -like 'quarterly*' -and Status -eq 'Retry'", [SENDER, "kim@fabrikam.com"]),
    ],
)
def test_get_message_filter(cmdlet, queues, filter_text, senders):
    result = cmdlet(f'Get-Message -Filter "{filter_text}" | ConvertTo-Json -Compress')
    assert result.status == 0, result.err
    found = json.loads(result.out)
    found = found if isinstance(found, list) else [found]
    assert [message["FromAddress"] for message in found] == senders


def test_get_message_unknown_identity_exits_1(cmdlet, queues):
    result = cmdlet("Get-Message EX01\\contoso.test\\999999")
    assert result.status == 1
    assert result.err == (
        "Get-Message : The operation couldn't be performed because object 'EX01\\contoso.test\\999999' couldn't be "
        "found.\n"
    )


def test_retry_queue(cmdlet, queues, woken):
    result = cmdlet("Retry-Queue -Identity EX01\\contoso.test")
    assert (result.status, result.out, result.err) == (0, "", "")
    assert all(row.next_attempt_at <= timezone.now() for row in Recipient.objects.filter(domain="contoso.test"))
    assert len(woken) == 1
    entry = AdminAuditLogEntry.objects.get(cmdlet="Retry-Queue")
    assert (entry.command_line, entry.caller, entry.source) == (
        "Retry-Queue -Identity 'EX01\\contoso.test'",
        "tester",
        "Shell",
    )


def test_retry_queue_with_nothing_to_retry_warns(cmdlet, queues):
    result = cmdlet("Retry-Queue EX01\\fabrikam.test")
    assert result.status == 0
    assert result.err == (
        "WARNING: The command completed successfully but no messages in 'EX01\\fabrikam.test' have been modified.\n"
    )


def test_retry_unreachable_needs_resubmit(cmdlet, queues, make_connector):
    result = cmdlet("Retry-Queue EX01\\Unreachable")
    assert result.status == 1
    assert result.err.startswith("Retry-Queue : The queue 'EX01\\Unreachable' can only be retried with -Resubmit $true")
    make_connector("Nowhere", ["nowhere.test"])
    assert cmdlet("Retry-Queue EX01\\Unreachable -Resubmit $true").status == 0
    assert Recipient.objects.get(domain="nowhere.test").status == RecipientStatus.READY


def test_retry_queue_by_filter_and_whatif(cmdlet, queues):
    result = cmdlet("Retry-Queue -Filter \"Status -eq 'Retry'\" -WhatIf")
    assert (result.status, result.out) == (0, 'What if: Retrying queue "EX01\\contoso.test".\n')
    assert not AdminAuditLogEntry.objects.filter(cmdlet="Retry-Queue").exists()
    assert cmdlet("Retry-Queue").err == (
        "Retry-Queue : Cannot process command because of one or more missing mandatory parameters: Identity.\n"
    )


def test_suspend_and_resume_queue_through_the_pipeline(cmdlet, queues):
    result = cmdlet("Get-Queue -Filter \"NextHopDomain -eq 'contoso.test'\" | Suspend-Queue")
    assert (result.status, result.err) == (0, "")
    assert "Suspended" in cmdlet("Get-Queue EX01\\contoso.test").out
    assert "EX01\\contoso.test" in cmdlet("Get-Queue -Filter \"Status -eq 'Suspended'\"").out
    assert cmdlet("Suspend-Queue EX01\\contoso.test").err == (
        "WARNING: The command completed successfully but no messages in 'EX01\\contoso.test' have been modified.\n"
    )
    assert cmdlet("Resume-Queue EX01\\contoso.test").status == 0
    assert "Suspended" not in cmdlet("Get-Queue EX01\\contoso.test").out
    assert set(Recipient.objects.filter(domain="contoso.test").values_list("status", flat=True)) == {"Retry"}
    assert list(
        AdminAuditLogEntry.objects.filter(cmdlet__in=["Suspend-Queue", "Resume-Queue"])
        .order_by("id")
        .values_list("command_line", flat=True)
    ) == [
        "Suspend-Queue -Identity 'EX01\\contoso.test'",
        "Suspend-Queue -Identity 'EX01\\contoso.test'",
        "Resume-Queue -Identity 'EX01\\contoso.test'",
    ]


def test_suspend_and_resume_message(cmdlet, queues):
    third = queues["third"]
    assert cmdlet(f"Suspend-Message EX01\\fabrikam.test\\{third.pk}").status == 0
    assert Recipient.objects.get(message=third).status == RecipientStatus.SUSPENDED
    listed = json.loads(cmdlet(f"Get-Message EX01\\fabrikam.test\\{third.pk} | ConvertTo-Json").out)
    assert listed["Status"] == "Suspended"
    assert cmdlet(f"Resume-Message -Identity EX01\\fabrikam.test\\{third.pk}").status == 0
    assert Recipient.objects.get(message=third).status == RecipientStatus.READY


def test_remove_message_asks_first(cmdlet, queues):
    first = queues["first"]
    declined = cmdlet(f"Remove-Message EX01\\contoso.test\\{first.pk}", stdin="n\n")
    assert declined.status == 1
    assert (
        f'Removing message "EX01\\contoso.test\\{first.pk}" with a non-delivery report to the sender.' in declined.err
    )
    assert set(Recipient.objects.filter(message=first).values_list("status", flat=True)) == {"Retry"}
    accepted = cmdlet(f"Remove-Message EX01\\contoso.test\\{first.pk}", stdin="y\n")
    assert accepted.status == 0
    assert set(Recipient.objects.filter(message=first).values_list("status", flat=True)) == {"Failed"}
    assert Message.objects.filter(is_dsn=True, original_message=first).count() == 1  # -WithNDR defaults to $true


def test_remove_message_without_ndr_and_confirm_false(cmdlet, queues):
    first = queues["first"]
    result = cmdlet(f"Remove-Message -Identity EX01\\contoso.test\\{first.pk} -WithNDR $false -Confirm:$false")
    assert (result.status, result.err) == (0, "")
    assert set(Recipient.objects.filter(message=first).values_list("status", flat=True)) == {"Failed"}
    assert not Message.objects.filter(is_dsn=True).exists()
    assert AdminAuditLogEntry.objects.get(cmdlet="Remove-Message").command_line == (
        f"Remove-Message -Identity 'EX01\\contoso.test\\{first.pk}' -WithNDR $false"
    )


def test_remove_messages_by_filter(cmdlet, queues):
    result = cmdlet("Remove-Message -Filter \"FromAddress -eq 'kim@fabrikam.com'\" -WithNDR $false -Confirm:$false")
    assert result.status == 0, result.err
    assert Recipient.objects.get(message=queues["second"]).status == RecipientStatus.FAILED
    assert Recipient.objects.filter(status=RecipientStatus.FAILED).count() == 1


def test_suspend_message_unknown_exits_1(cmdlet, queues):
    result = cmdlet("Suspend-Message EX01\\contoso.test\\abc")
    assert result.status == 1
    assert result.err.startswith("Suspend-Message : The operation couldn't be performed because object")


BIG = "9223372036854775808"  # one more than the largest 64-bit id


@pytest.mark.parametrize(
    "line, error",
    [
        ('Get-Message -Filter "Size -gt nan"', 'The value "nan" of the filter on Size isn\'t a number.'),
        ('Get-Message -Filter "Size -gt inf"', 'The value "inf" of the filter on Size isn\'t a number.'),
        ('Get-Message -Filter "Size -gt 1e400"', 'The value "1e400" of the filter on Size is out of range.'),
        ('Get-Message -Filter "RetryCount -lt -99999999999999999999999"', "is out of range"),
        ('Get-Queue -Filter "MessageCount -gt inf"', "isn't a number"),
        ('Get-Message -Filter "' + "(" * 1000 + "Size -gt 1" + ")" * 1000 + '"', "The filter is too complex."),
        ('Get-Message -Filter "' + "-not " * 700 + 'Size -gt 1"', "The filter is too complex."),
        ('Get-Queue -Filter "' + "(" * 1000 + "MessageCount -gt 1" + ")" * 1000 + '"', "The filter is too complex."),
        ('Get-Message -Filter "' + " -and ".join(["Size -gt 1"] * 2000) + '"', "A filter can have at most 4096"),
        ('Get-Message -Filter "' + " -or ".join(["Size -gt 1"] * 101) + '"', "Use at most 100 comparisons"),
        (f"Get-Message -Identity 'EX01\\contoso.test\\{BIG}'", f"object 'EX01\\contoso.test\\{BIG}' couldn't be found"),
        ("Get-Message -Identity 'EX01\\contoso.test\\99999999999999999999999'", "couldn't be found"),
        ("Get-Message -Identity 'EX01\\contoso.test\\²'", "couldn't be found"),
        (f"Remove-Message -Identity 'EX01\\contoso.test\\{BIG}' -Confirm:$false", "couldn't be found"),
        (
            "Get-Message -ResultSize 99999999999999999999999",
            "Cannot process argument transformation on parameter 'ResultSize'. "
            'The value "99999999999999999999999" isn\'t valid. Enter a whole number from 1 through 2147483647, '
            "or unlimited.",
        ),
        ("Get-Queue -ResultSize 2147483648", "Enter a whole number from 1 through 2147483647, or unlimited."),
        ("Get-Message -ResultSize ²", "isn't valid"),
        ("Get-MessageTrackingLog -ResultSize 99999999999999999999999", "isn't valid"),
        # PostgreSQL can't compare text holding NUL: refused before any query, whatever the database.
        (
            'Get-Queue -Identity "EX01\\con`0toso.test"',
            "Cannot process argument transformation on parameter 'Identity'. The value contains the NUL character (`0)",
        ),
        ('Get-Message -Queue "EX01\\con`0toso.test"', "parameter 'Queue'. The value contains the NUL character"),
        ("Get-Message -Filter \"Subject -eq 'a`0b'\"", "parameter 'Filter'. The value contains the NUL character"),
        ('Get-MessageTrackingLog -Recipients kim@contoso.test,"a`0@b.c"', "parameter 'Recipients'. The value contains"),
        ('Get-MessageTrackingLog -Server "EX`001"', "parameter 'Server'. The value contains the NUL character"),
    ],
)
def test_numbers_out_of_range_and_oversized_filters_exit_1(cmdlet, queues, line, error):
    result = cmdlet(line)
    assert (result.status, result.out) == (1, "")
    assert result.err.startswith(line.split()[0] + " : ")
    assert error in result.err


def test_result_size_at_the_int32_limit_works(cmdlet, queues):
    result = cmdlet("Get-Message -ResultSize 2147483647 | ConvertTo-Json -Compress")
    assert result.status == 0, result.err
    assert len(json.loads(result.out)) == 4


@pytest.fixture
def long_subject():
    return queued("x@contoso.test", **retry_values())  # its subject gets 200 a's below


def test_like_with_many_wildcards_is_fast_and_case_insensitive(cmdlet, queues, long_subject):
    Message.objects.filter(pk=long_subject.pk).update(subject="a" * 200)
    started = timezone.now()
    result = cmdlet("Get-Message -Filter \"Subject -like '*a*a*a*a*a*a*a*a*a*a*a*b'\"")
    assert (result.status, result.out, result.err) == (0, "", "")
    assert (timezone.now() - started).total_seconds() < 5
    found = json.loads(cmdlet("Get-Message -Filter \"Subject -like '*A*A?A*'\" | ConvertTo-Json -Compress").out)
    assert found["Identity"] == f"EX01\\contoso.test\\{long_subject.pk}"


def test_like_treats_percent_underscore_and_backslash_literally(cmdlet, queues):
    literal = queued("y@contoso.test", **retry_values())
    Message.objects.filter(pk=literal.pk).update(subject="100%_done\\now")

    def subjects(pattern):
        result = cmdlet(f"Get-Message -Filter \"Subject -like '{pattern}'\" | ConvertTo-Json -Compress")
        assert result.status == 0, result.err
        found = json.loads(result.out) if result.out.strip() else []
        return [message["Subject"] for message in (found if isinstance(found, list) else [found])]

    assert subjects("100%_done\\now") == ["100%_done\\now"]
    assert subjects("1_0*") == []  # _ is a character here, not LIKE's any-character
    assert subjects("%*") == []
    assert subjects("100?_*") == ["100%_done\\now"]
    notlike = cmdlet("Get-Message -Filter \"Subject -notlike '*%*'\" | ConvertTo-Json -Compress")
    assert len(json.loads(notlike.out)) == 4
