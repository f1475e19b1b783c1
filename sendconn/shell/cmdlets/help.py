"""Get-Command and Get-Help: what this shell supports, from the registry itself (so they never disagree with it)."""

import fnmatch

from .. import registry
from ..output import Record
from ..registry import CmdletError, Parameter, cmdlet, switch, text, text_list

WIDTH = 116


def _cmdlets():
    """[(Cmdlet, [aliases])] for every registered cmdlet, by name."""
    found: dict[str, tuple[registry.Cmdlet, list[str]]] = {}
    for key, definition in registry.COMMANDS.items():
        _, aliases = found.setdefault(definition.name, (definition, []))
        if key != definition.name.lower():
            aliases.append(key)
    return sorted(found.values(), key=lambda pair: pair[0].name.lower())


def _matches(name, patterns):
    return any(fnmatch.fnmatchcase(name.lower(), pattern.lower()) for pattern in patterns)


@cmdlet(
    "Get-Command",
    Parameter("Name", text_list, position=0),
    Parameter("Verb", text_list),
    Parameter("Noun", text_list),
    aliases=("gcm",),
)
def get_command(invocation):
    """Use the Get-Command cmdlet to list the cmdlets and aliases this shell supports."""
    params = invocation.params
    names, verbs, nouns = params.get("Name") or ["*"], params.get("Verb") or ["*"], params.get("Noun") or ["*"]
    records = []
    for definition, aliases in _cmdlets():
        verb, _, noun = definition.name.partition("-")
        if not (_matches(verb, verbs) and _matches(noun, nouns)):
            continue
        if _matches(definition.name, names):
            records.append(Record({"CommandType": "Cmdlet", "Name": definition.name, "Source": "sendconn"}))
        records += [
            Record({"CommandType": "Alias", "Name": f"{alias} -> {definition.name}", "Source": "sendconn"})
            for alias in aliases
            if "Name" in params and _matches(alias, names)
        ]
    if not records and not any("*" in name for name in names):
        registry.lookup(names[0])  # PowerShell's "is not recognized" error
    return records


def _type(parameter):
    return parameter.type_name.rsplit(".", 1)[-1]


def syntax(definition):
    """PowerShell's syntax line as its parts: ``New-SendConnector``, ``[-Name] <String>``, …"""
    parts = [definition.name]
    ordered = sorted(definition.parameters, key=lambda p: (p.position is None, p.position or 0, not p.mandatory))
    for parameter in ordered:
        if parameter.is_switch:
            parts.append(f"[-{parameter.name}]")
            continue
        name = f"[-{parameter.name}]" if parameter.position is not None else f"-{parameter.name}"
        part = f"{name} <{_type(parameter)}>"
        parts.append(part if parameter.mandatory else f"[{part}]")
    parts.append("[<CommonParameters>]")
    return parts


def wrapped(parts, first="    ", rest="        "):
    """The parts on lines of at most WIDTH characters, never breaking one."""
    lines, line = [], first + parts[0]
    for part in parts[1:]:
        if len(line) + 1 + len(part) > WIDTH:
            lines.append(line)
            line = rest + part
        else:
            line += " " + part
    return lines + [line]


def _parameter_help(parameter, definition):
    pipeline = (
        "true (ByPropertyName)"
        if parameter.pipeline
        else "true (ByValue)"
        if (definition.takes_input and parameter.position == 0)
        else "false"
    )
    value = "" if parameter.is_switch else f" <{_type(parameter)}>"
    return [
        f"    -{parameter.name}{value}",
        f"        Required?                    {'true' if parameter.mandatory else 'false'}",
        f"        Position?                    {'named' if parameter.position is None else parameter.position}",
        f"        Accept pipeline input?       {pipeline}",
        f"        Aliases                      {', '.join(parameter.aliases) or 'none'}",
        "",
    ]


def help_lines(definition, aliases, full=False, parameter_names=None):
    synopsis = (definition.function.__doc__ or "").strip().split("\n\n")[0]
    lines = ["", "NAME", f"    {definition.name}", ""]
    if synopsis:
        lines += ["SYNOPSIS", *wrapped(synopsis.split(), rest="    "), ""]
    lines += ["SYNTAX", *wrapped(syntax(definition)), ""]
    if full or parameter_names:
        chosen = [p for p in definition.parameters if not parameter_names or _matches(p.name, parameter_names)]
        if parameter_names and not chosen:
            raise CmdletError(f"No parameter matches criteria {', '.join(parameter_names)}.", cmdlet="Get-Help")
        lines += ["PARAMETERS"] + [line for p in chosen for line in _parameter_help(p, definition)]
    if aliases:
        lines += ["ALIASES", *(f"    {alias}" for alias in aliases), ""]
    if not full and not parameter_names:
        lines += ["REMARKS", f'    For the parameters, type: "Get-Help {definition.name} -Full".', ""]
    return lines


@cmdlet(
    "Get-Help",
    Parameter("Name", text, position=0),
    switch("Full"),
    switch("Detailed"),
    Parameter("Parameter", text_list),
    aliases=("help",),
)
def get_help(invocation):
    """Use the Get-Help cmdlet to see a cmdlet's syntax and parameters; Get-Command lists the cmdlets."""
    name = (invocation.params.get("Name") or "").strip()
    if not name:
        return [
            "",
            "Exchange Management Shell lines run with manage.py cmdlet. Get-Command lists every supported cmdlet;",
            "Get-Help <cmdlet> shows its syntax, for example: Get-Help New-SendConnector -Full",
            "",
        ]
    aliases = {definition.name: names for definition, names in _cmdlets()}
    definition = registry.COMMANDS.get(name.lower())
    if definition is None:
        found = [d for d, _ in _cmdlets() if _matches(d.name, [name])]
        if len(found) != 1:
            if not found:
                raise CmdletError(
                    f"Get-Help could not find {name} in a help file in this session. Get-Command "
                    "lists the cmdlets this shell supports."
                )
            return [
                Record(
                    {
                        "Name": d.name,
                        "Category": "Cmdlet",
                        "Synopsis": (d.function.__doc__ or "").strip().split("\n")[0],
                    },
                    table=("Name", "Category", "Synopsis"),
                )
                for d in found
            ]
        definition = found[0]
    full = invocation.params.get("Full", False) or invocation.params.get("Detailed", False)
    return help_lines(definition, aliases[definition.name], full, invocation.params.get("Parameter"))
