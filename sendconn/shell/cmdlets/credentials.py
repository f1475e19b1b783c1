"""Get-Credential: asks for a user name and a password (never echoed, never printed, never logged)."""

from sendconn.connectors.services import Credential

from ..registry import CmdletError, Parameter, cmdlet, text


@cmdlet("Get-Credential", Parameter("UserName", text, position=0, aliases=("Credential",)), Parameter("Message", text))
def get_credential(invocation):
    """Gets a credential object based on a user name and password."""
    session = invocation.session
    if invocation.params.get("Message"):
        session.stderr.write(invocation.params["Message"] + "\n")
    username = (invocation.params.get("UserName") or session.ask("User name: ") or "").strip()
    if not username:
        raise CmdletError("No user name was entered.")
    password = session.ask_secret("Password: ")
    if password is None:
        raise CmdletError(f'No password was entered for the user "{username}".')
    return [Credential(username, password)]
