"""The one check of SMTP addresses and HELO names that smtpd, queueing and delivery share."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendconn.transport.addresses import is_helo_name, validate_smtp_address


@pytest.mark.parametrize(
    "address",
    [
        "kim@fabrikam.test",
        "first.last+tag@mail.fabrikam.test",
        "!#$%&'*+/=?^_`{|}~-@fabrikam.test",
        '"two words"@fabrikam.test',
        '"a@b"@fabrikam.test',
        '"quoted \\" quote"@fabrikam.test',
        "app@[192.0.2.1]",
        "app@[IPv6:2001:db8::1]",
        "postmaster@localhost",
        "jürgen@fabrikam.test",  # RFC 6531: delivery sends it with SMTPUTF8
    ],
)
def test_addresses_delivery_can_carry(address):
    assert validate_smtp_address(address) == address


@pytest.mark.parametrize(
    "address",
    [
        "",
        "no-domain",
        "@fabrikam.test",
        "kim@",
        "kim@@fabrikam.test",
        '"a>b"@capture.example',
        '"a<b"@capture.example',
        '"a\\>b"@capture.example',
        "a>b@capture.example",
        "a\x00b@fabrikam.test",
        "a\rb@fabrikam.test",
        '"a\r\nb"@fabrikam.test',
        "kim@fabrikam.test\r\nRCPT TO:<x@y.z>",
        "kim @fabrikam.test",
        "kim@ fabrikam.test",
        "kim@fabrikam.test ",
        "kim@fabrikam.test.",
        "a..b@fabrikam.test",
        ".kim@fabrikam.test",
        "kim.@fabrikam.test",
        "kim@bad_domain.test",
        "kim@fabrikam..test",
        "kim@[192.0.2.256]",
        "kim@[IPv6:192.0.2.1]",
        "kim@[2001:db8::1]",
        "kim@fabrikam.test>",
        "<kim@fabrikam.test>",
        "kim@-fabrikam.test",
    ],
)
def test_addresses_delivery_cannot_carry_raise_value_error(address):
    with pytest.raises(ValueError, match="isn't a valid SMTP address"):
        validate_smtp_address(address)


def test_null_sender_only_where_allowed():
    assert validate_smtp_address("", null_allowed=True) == ""
    with pytest.raises(ValueError):
        validate_smtp_address("")


@given(st.text(max_size=40), st.text(max_size=20))
def test_a_valid_address_never_breaks_out_of_its_smtp_path(local, domain):
    try:
        address = validate_smtp_address(f"{local}@{domain}")
    except ValueError:
        return
    assert not any(character in address for character in "<>\r\n\x00")
    assert all(ord(character) >= 0x20 and character != "\x7f" for character in address)


@pytest.mark.parametrize(
    "name, valid",
    [
        ("client.contoso.test", True),
        ("localhost", True),
        ("[127.0.0.1]", True),
        ("[IPv6:::1]", True),
        ("evil.example\rX-Injected: x", False),
        ("[127.0.0.1]\r\rSubject: fake", False),
        ("evil\x00.example", False),
        ("", False),
        ("two words", False),
        ("[::1]", False),
        ("[999.0.0.1]", False),
        ("scan_to_mail.contoso.test", True),
    ],
)
def test_helo_names(name, valid):
    assert is_helo_name(name) is valid


@given(st.text(max_size=40))
def test_a_valid_helo_name_is_safe_in_a_header(name):
    if is_helo_name(name):
        assert name.isascii() and name.isprintable() and " " not in name
