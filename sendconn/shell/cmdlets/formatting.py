"""Format-List, Format-Table, Select-Object and ConvertTo-Json: what the pipeline's last element prints."""

from ..output import Record, convert_to_json, format_list, format_table, select_properties
from ..registry import Parameter, cmdlet, integer, switch, text_list

PROPERTY = Parameter("Property", text_list, position=0)


def _records(objects):
    return [item for item in objects if isinstance(item, Record)]


@cmdlet("Format-List", PROPERTY, aliases=("fl",), takes_input=True)
def format_list_cmdlet(invocation):
    """Formats the output as a list of properties, each on its own line."""
    return format_list(_records(invocation.input), invocation.params.get("Property"))


@cmdlet("Format-Table", PROPERTY, switch("AutoSize"), aliases=("ft",), takes_input=True)
def format_table_cmdlet(invocation):
    """Formats the output as a table."""
    return format_table(_records(invocation.input), invocation.params.get("Property"))


@cmdlet("Select-Object", PROPERTY, Parameter("First", integer), aliases=("select",), takes_input=True)
def select_object(invocation):
    """Selects objects, or properties of objects."""
    objects = invocation.input
    if "First" in invocation.params:
        objects = objects[: max(invocation.params["First"], 0)]
    patterns = invocation.params.get("Property")
    if not patterns:
        return objects
    return [
        Record({name: item[name] for name in select_properties(item, patterns)}) if isinstance(item, Record) else item
        for item in objects
    ]


@cmdlet("ConvertTo-Json", switch("Compress"), Parameter("Depth", integer), takes_input=True)
def convert_to_json_cmdlet(invocation):
    """Converts the objects piped in to JSON."""
    return convert_to_json(invocation.input, compress=invocation.params.get("Compress", False))
