"""OPATH filters: parsing, precedence, PowerShell's comparisons, and Exchange's error text."""

import re

import pytest
from django.db.models import F, Q, Value

from sendconn.transport import opath

PROPERTIES = ("Status", "MessageCount", "NextHopDomain", "LastError")
QUEUE = {"Status": "Retry", "MessageCount": 12, "NextHopDomain": "mail.contoso.com", "LastError": None}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Status -eq 'retry'", True),  # text compares case-insensitively
        ("status -EQ Retry", True),  # names and operators too; bare values
        ("MessageCount -gt 9", True),  # numbers as numbers: 12 > 9 (not "12" < "9")
        ("MessageCount -le 11", False),
        ("NextHopDomain -like '*CONTOSO*'", True),
        ("NextHopDomain -notlike 'mail.?ontoso.com'", False),
        ("LastError -eq $null", True),
        ("Status -ne 'Retry' -or MessageCount -ge 12 -and NextHopDomain -like 'x*'", False),  # -and binds first
        ("(Status -ne 'Retry' -or MessageCount -ge 12) -and -not (NextHopDomain -like 'x*')", True),
        ('Status -eq "Re""try"', False),
        ("LastError -eq 'it''s'", False),
    ],
)
def test_matches(text, expected):
    assert opath.matches(opath.parse(text, PROPERTIES), QUEUE) is expected


@pytest.mark.parametrize(
    "text, position",
    [
        ("Status -is 'Retry'", 8),
        ("Status -eq", 11),
        ("(Status -eq 'Retry'", 20),
        ("Status -eq 'Retry' Status", 20),
        ("", 1),
        ("-eq 'Retry'", 1),
    ],
)
def test_syntax_errors_say_where(text, position):
    with pytest.raises(opath.FilterError) as error:
        opath.parse(text, PROPERTIES)
    assert str(error.value) == (
        f'Invalid filter syntax. For a description of the filter parameter syntax see the command help. "{text}" '
        f"at position {position}."
    )


def test_unknown_property_lists_the_known_ones():
    with pytest.raises(
        opath.FilterError,
        match='"Colour" isn\'t a property that can be filtered on. Use one of: '
        "Status, MessageCount, NextHopDomain, LastError.",
    ):
        opath.parse("Colour -eq 'red'", PROPERTIES)


def test_to_q_turns_wildcards_into_escaped_like_patterns():
    fields = {"Status": ("status", False), "MessageCount": ("count", True)}
    q = opath.to_q(opath.parse("Status -like 'Re*y?' -and MessageCount -ge 2", PROPERTIES[:2]), fields)
    assert q == Q(opath.Like(F("status"), Value("Re%y_"))) & Q(count__gte=2)
    with pytest.raises(opath.FilterError, match="is a number"):
        opath.to_q(opath.parse("MessageCount -like '1*'", PROPERTIES[:2]), fields)


@pytest.mark.parametrize(
    "wildcard, pattern",
    [
        ("*a*b?", "%a%b_"),
        ("100%_done", "100\\%\\_done"),  # LIKE's own wildcards are literal in PowerShell's
        ("C:\\temp*", "C:\\\\temp%"),
    ],
)
def test_like_patterns_escape_likes_own_wildcards(wildcard, pattern):
    assert opath.like_pattern(wildcard) == pattern


@pytest.mark.parametrize(
    "value, number",
    [("12", 12), ("-3", -3), ("+1.5", 1.5), ("1e3", 1000), (".5", 0.5), ("9223372036854775807", 2**63 - 1)],
)
def test_numbers(value, number):
    tree = opath.parse(f"MessageCount -eq {value}", PROPERTIES)
    assert opath.matches(tree, {"MessageCount": number}) is True


@pytest.mark.parametrize(
    "value, error",
    [
        ("nan", "isn't a number"),
        ("inf", "isn't a number"),
        ("-Infinity", "isn't a number"),
        ("1_000", "isn't a number"),
        ("0x10", "isn't a number"),
        ("١٢", "isn't a number"),
        ("$true", "isn't a number"),
        ("1e400", "is out of range. Use a number from -9223372036854775808 through 9223372036854775807."),
        ("9223372036854775808", "is out of range"),
        ("-99999999999999999999999", "is out of range"),
    ],
)
def test_numbers_that_are_refused(value, error):
    tree = opath.parse(f"MessageCount -gt {value}", PROPERTIES)
    with pytest.raises(opath.FilterError, match=re.escape(error)):
        opath.matches(tree, QUEUE)
    with pytest.raises(opath.FilterError, match=re.escape(error)):
        opath.to_q(tree, {"MessageCount": ("count", True)})


@pytest.mark.parametrize(
    "text",
    [
        "(" * 1000 + "Status -eq 'Retry'" + ")" * 1000,
        "-not " * 500 + "Status -eq 'Retry'",
        "(" * (opath.MAX_DEPTH + 1) + "Status -eq 'Retry'" + ")" * (opath.MAX_DEPTH + 1),
        " -and ".join(["MessageCount -gt 1"] * (opath.MAX_COMPARISONS + 1)),
    ],
)
def test_deep_or_large_filters_are_refused(text):
    with pytest.raises(opath.FilterError, match="The filter is too complex. Use at most 100 comparisons and 32 levels"):
        opath.parse(text, PROPERTIES)


def test_the_limits_themselves_are_accepted():
    deep = "(" * opath.MAX_DEPTH + "Status -eq 'Retry'" + ")" * opath.MAX_DEPTH
    wide = " -or ".join(["MessageCount -gt 1"] * opath.MAX_COMPARISONS)
    assert opath.matches(opath.parse(deep, PROPERTIES), QUEUE) is True
    assert opath.matches(opath.parse(wide, PROPERTIES), QUEUE) is True


@pytest.mark.parametrize(
    "text, error",
    [
        ("Status -eq '" + "x" * opath.MAX_LENGTH + "'", f"A filter can have at most {opath.MAX_LENGTH}"),
        (" -and ".join(["MessageCount -gt 1"] * 2000), f"A filter can have at most {opath.MAX_LENGTH}"),
        ("Status -eq 'a\x00b'", "U+0000"),
        ("Status -eq '\udcff'", "U+DCFF"),
    ],
)
def test_long_filters_and_unusable_characters_are_refused(text, error):
    with pytest.raises(opath.FilterError, match=re.escape(error)):
        opath.parse(text, PROPERTIES)


def test_brackets_are_literal_in_records_as_in_the_database():
    tree = opath.parse("NextHopDomain -like '[mc]ail*'", PROPERTIES)
    assert opath.matches(tree, {"NextHopDomain": "mail.contoso.com"}) is False
    assert opath.matches(tree, {"NextHopDomain": "[mc]ail.contoso.com"}) is True


def test_database_numbers_are_whole():
    fields = {"MessageCount": ("count", True)}
    assert opath.to_q(opath.parse("MessageCount -eq 1e2", PROPERTIES), fields) == Q(count=100)
    with pytest.raises(
        opath.FilterError, match='The value "10.5" of the filter on MessageCount isn\'t a whole number.'
    ):
        opath.to_q(opath.parse("MessageCount -eq 10.5", PROPERTIES), fields)
