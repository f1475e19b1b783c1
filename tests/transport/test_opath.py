"""OPATH filters: parsing, precedence, PowerShell's comparisons, and Exchange's error text."""
import pytest
from django.db.models import Q

from sendconn.transport import opath

PROPERTIES = ("Status", "MessageCount", "NextHopDomain", "LastError")
QUEUE = {"Status": "Retry", "MessageCount": 12, "NextHopDomain": "mail.contoso.com", "LastError": None}


@pytest.mark.parametrize("text, expected", [
    ("Status -eq 'retry'", True),  # text compares case-insensitively
    ("status -EQ Retry", True),  # names and operators too; bare values
    ("MessageCount -gt 9", True),  # numbers as numbers: 12 > 9 (not "12" < "9")
    ("MessageCount -le 11", False),
    ("NextHopDomain -like '*CONTOSO*'", True),
    ("NextHopDomain -notlike 'mail.?ontoso.com'", False),
    ("LastError -eq $null", True),
    ("Status -ne 'Retry' -or MessageCount -ge 12 -and NextHopDomain -like 'x*'", False),  # -and binds first
    ("(Status -ne 'Retry' -or MessageCount -ge 12) -and -not (NextHopDomain -like 'x*')", True),
    ("Status -eq \"Re\"\"try\"", False),
    ("LastError -eq 'it''s'", False),
])
def test_matches(text, expected):
    assert opath.matches(opath.parse(text, PROPERTIES), QUEUE) is expected


@pytest.mark.parametrize("text, position", [
    ("Status -is 'Retry'", 8),
    ("Status -eq", 11),
    ("(Status -eq 'Retry'", 20),
    ("Status -eq 'Retry' Status", 20),
    ("", 1),
    ("-eq 'Retry'", 1),
])
def test_syntax_errors_say_where(text, position):
    with pytest.raises(opath.FilterError) as error:
        opath.parse(text, PROPERTIES)
    assert str(error.value) == (
        f'Invalid filter syntax. For a description of the filter parameter syntax see the command help. "{text}" '
        f"at position {position}."
    )


def test_unknown_property_lists_the_known_ones():
    with pytest.raises(opath.FilterError, match='"Colour" isn\'t a property that can be filtered on. Use one of: '
                                                 "Status, MessageCount, NextHopDomain, LastError."):
        opath.parse("Colour -eq 'red'", PROPERTIES)


def test_to_q_turns_wildcards_into_anchored_regexes():
    fields = {"Status": ("status", False), "MessageCount": ("count", True)}
    q = opath.to_q(opath.parse("Status -like 'Re*y?' -and MessageCount -ge 2", PROPERTIES[:2]), fields)
    assert q == Q(status__iregex="^Re.*y.$") & Q(count__gte=2.0)
    with pytest.raises(opath.FilterError, match="is a number"):
        opath.to_q(opath.parse("MessageCount -like '1*'", PROPERTIES[:2]), fields)
