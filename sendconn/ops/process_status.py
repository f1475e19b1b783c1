"""What `manage.py runall` (`make run`'s supervisor) says of its processes, for the dashboard.

runall rewrites ``$SENDCONN_VAR_DIR/processes.json`` whenever a process starts, exits or is stopped. Web reads it
when it shares the var dir with runall (embedded mode); elsewhere (Docker Compose, a web on another host) there is
no such file and nothing is known here of the other processes.
"""

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings

FILE_NAME = "processes.json"


class ProcessState:
    RUNNING = "Running"
    RESTARTING = "Restarting"  # exited; runall starts it again after a back-off delay
    STOPPED = "Stopped"  # runall stopped it (Ctrl+C / SIGTERM)


@dataclass
class ProcessStatus:
    name: str
    state: str
    pid: int | None = None
    started_at: datetime | None = None
    restarts: int = 0
    last_exit: str | None = None  # "exit status 1", "killed by SIGKILL"
    last_exit_at: datetime | None = None
    restart_at: datetime | None = None  # while Restarting

    TIMES = ("started_at", "last_exit_at", "restart_at")


def status_path():
    return settings.VAR_DIR / FILE_NAME


def write(processes, updated_at):
    """Replace the file at once (readers never see half of it)."""
    path = status_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    temporary.write_text(
        json.dumps(
            {"updated_at": updated_at, "processes": [asdict(process) for process in processes]},
            default=datetime.isoformat,
            indent=1,
        )
    )
    os.replace(temporary, path)


def read():
    """``(updated_at, [ProcessStatus])``, or None when there is no readable file."""
    try:
        data = json.loads(status_path().read_text())
        processes = [ProcessStatus(**process) for process in data["processes"]]
        for process in processes:
            for field in ProcessStatus.TIMES:
                if getattr(process, field) is not None:
                    setattr(process, field, datetime.fromisoformat(getattr(process, field)))
        return datetime.fromisoformat(data["updated_at"]), processes
    except (OSError, ValueError, KeyError, TypeError):
        return None
