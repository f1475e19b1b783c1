"""The PowerShell-syntax parser: what admins paste from Microsoft's docs, and PowerShell's errors for the rest."""

import pytest

from sendconn.shell.parser import (
    NO_VALUE,
    Argument,
    Parameter,
    ParseError,
    ScriptBlock,
    SubExpression,
    Variable,
    parse,
)


def pipeline(line):
    (statement,) = parse(line)
    return statement.pipeline


def elements(line):
    (command,) = pipeline(line)
    return command.elements


def values(line):
    return [element.value for element in elements(line) if isinstance(element, Argument)]


def test_seed_line():
    (command,) = pipeline('New-SendConnector -Name "To internet" -AddressSpaces * -Internet')
    assert command.name == "New-SendConnector"
    assert [(type(e).__name__, getattr(e, "name", None), e.value) for e in command.elements] == [
        ("Parameter", "Name", NO_VALUE),
        ("Argument", None, "To internet"),
        ("Parameter", "AddressSpaces", NO_VALUE),
        ("Argument", None, "*"),
        ("Parameter", "Internet", NO_VALUE),
    ]


def test_comma_list_with_quoted_entry():
    assert values('x -AddressSpaces "SMTP:*.contoso.com;5",fabrikam.com') == [["SMTP:*.contoso.com;5", "fabrikam.com"]]
    assert values("x a, b ,c") == [["a", "b", "c"]]


def test_constants_and_colon_values():
    (parameter,) = [e for e in elements("Remove-X -Confirm:$false") if isinstance(e, Parameter)]
    assert parameter.name == "Confirm" and parameter.value.value is False
    assert values("x $TRUE $null $False") == [True, None, False]
    (parameter,) = elements("x -Name: 'spaced'")
    assert parameter.value.value == "spaced"


def test_single_quotes_double_the_quote():
    assert values("x 'It''s' ''") == ["It's", ""]


def test_double_quotes_take_backtick_escapes_and_doubled_quotes():
    assert values('x "a`"b" "say ""hi""" "tab`there" "$notavariable"') == [
        'a"b',
        'say "hi"',
        "tab\there",
        "$notavariable",
    ]


def test_quoted_parts_join_a_bare_word():
    assert values('x SMTP:"contoso.com;2"') == ["SMTP:contoso.com;2"]


def test_typographic_quotes_and_dashes_from_pasted_docs():
    (name, value) = elements("New-SendConnector \u2013Name \u201cTo internet\u201d")
    assert name.name == "Name" and value.value == "To internet"
    assert values("x \u2018it\u2019\u2019s\u2019") == ["it's"]


def test_hashtable_add_remove():
    assert values('Set-SendConnector X -SmartHosts @{Add="a.com","b.com"; Remove = c.com}')[1] == {
        "Add": ["a.com", "b.com"],
        "Remove": "c.com",
    }
    assert values("x @{ 'Add'='a' }") == [{"Add": "a"}]
    assert values("x @{}") == [{}]


def test_arrays_and_subexpressions():
    assert values('x @("a", "b") ("c","d")') == [["a", "b"], ["c", "d"]]
    (value,) = values("x (Get-Credential svc)")
    assert isinstance(value, SubExpression)
    assert value.pipeline[0].name == "Get-Credential" and value.pipeline[0].elements[0].value == "svc"


def test_pipeline_script_block_and_comment():
    commands = pipeline('Get-Queue -Filter {Status -eq "Retry"} | fl Identity,Status  # why')
    assert [command.name for command in commands] == ["Get-Queue", "fl"]
    assert commands[0].elements[1].value == ScriptBlock('Status -eq "Retry"')
    assert commands[1].elements[0].value == ["Identity", "Status"]


def test_backtick_line_continuation():
    commands = pipeline("New-SendConnector -Name X `\n  -AddressSpaces *")
    assert [getattr(e, "name", e.value) for e in commands[0].elements] == ["Name", "X", "AddressSpaces", "*"]


def test_statements_are_separated_by_semicolons_and_new_lines():
    assert [command.name for command in pipeline("\n Get-SendConnector\n")] == ["Get-SendConnector"]
    statements = parse("Get-SendConnector;Get-TransportService\n\n Get-Queue | fl ;")
    assert [[command.name for command in statement.pipeline] for statement in statements] == [
        ["Get-SendConnector"],
        ["Get-TransportService"],
        ["Get-Queue", "fl"],
    ]


def test_variables_are_assigned_then_used():
    first, second, third = parse(
        "$cred = Get-Credential; New-SendConnector -AuthenticationCredential $Cred; $cred | fl"
    )
    assert (first.variable, first.source, [command.name for command in first.pipeline]) == (
        "cred",
        NO_VALUE,
        ["Get-Credential"],
    )
    assert second.variable is None and second.pipeline[0].elements[1].value == Variable("Cred")
    assert (third.source, [command.name for command in third.pipeline]) == (Variable("cred"), ["fl"])
    (named,) = parse("$name = 'To internet', 'Other'")
    assert (named.variable, named.source, named.pipeline) == ("name", ["To internet", "Other"], [])


def test_negative_number_is_a_value_not_a_parameter():
    assert values("x -5") == ["-5"]


def test_empty_line_is_nothing_to_run():
    assert parse("   ") == []
    assert parse("# just a comment") == []


@pytest.mark.parametrize(
    "line, message, offset",
    [
        ('New-SendConnector -Name "To internet', 'The string is missing the terminator: ".', 24),
        ("Get-SendConnector 'x", "The string is missing the terminator: '.", 18),
        ("x @{Add='a'", "The hash literal was incomplete.", 2),
        ("x @{Add}", "Missing '=' operator after key in hash literal.", 7),
        ("x @{Add=}", "Missing statement after '=' in hash literal.", 8),
        ("x @{a=1;A=2}", "Duplicate keys 'A' are not allowed in hash literals.", 8),
        ("x (Get-Credential", "Missing closing ')' in expression.", 2),
        ("x {abc", "Missing closing '}' in statement block or type definition.", 2),
        ("x a,", "Missing argument in parameter list.", 4),
        ("x | ", "An empty pipe element is not allowed.", 4),
        ("x $foo", "The variable '$foo' cannot be retrieved because it has not been set.", 2),
        (
            "x -AddressSpaces SMTP:contoso.com;1",
            "Unexpected token '1' in expression or statement. To pass a value that contains ';'",
            33,
        ),
        ("$a = x; $b", "The variable '$b' cannot be retrieved because it has not been set.", 8),
        ("$a = $a", "The variable '$a' cannot be retrieved because it has not been set.", 5),
        ("$a = ", "You must provide a value expression following the '=' operator.", 5),
        ("$a = x; y $a.Name", "Only the whole variable '$a' can be used here", 12),
        ("x )", "Unexpected token ')' in expression or statement.", 2),
    ],
)
def test_syntax_errors_use_powershell_words(line, message, offset):
    with pytest.raises(ParseError) as error:
        parse(line)
    assert error.value.message.startswith(message)
    assert error.value.offset == offset


def test_parse_error_through_the_shell_exits_1_and_points_at_the_spot(cmdlet):
    result = cmdlet('New-SendConnector -Name "To internet -AddressSpaces *')
    assert result.status == 1
    assert result.out == ""
    assert result.err.splitlines() == [
        "At line:1 char:25",
        '+ New-SendConnector -Name "To internet -AddressSpaces *',
        "+                         ~",
        'The string is missing the terminator: ".',
    ]
