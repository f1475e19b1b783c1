"""The SMTP Send protocol log viewer: the log files by day, a day's sessions (searchable), one session as a
readable transcript, and the raw file for download. Reading is ``ops.protocol_log_files``'s job.
"""

import os

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.views.decorators.http import require_safe

from sendconn.accounts import roles

from .. import protocol_log_files
from ..search_forms import SessionSearchForm

FILES_PAGE_SIZE = 50
SESSIONS_PAGE_SIZE = 50
# The protocol log is the transport's other log: whoever may read message tracking (all three role groups) may
# read it too.
VIEW_PROTOCOL_LOGS = roles.VIEW_MESSAGE_TRACKING


@require_safe
@permission_required(VIEW_PROTOCOL_LOGS, raise_exception=True)
def file_list(request):
    page = Paginator(protocol_log_files.log_files(), FILES_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "ops/protocol_logs/files.html", {"page": page})


def _day_files(day_key):
    """The day's log files in the order they were written; 404 for a day that isn't one or has no log."""
    day = protocol_log_files.parse_day(day_key)
    files = protocol_log_files.log_files(day) if day else []
    if not files:
        raise Http404("There is no Send protocol log for this day.")
    return day, files[::-1]


@require_safe
@permission_required(VIEW_PROTOCOL_LOGS, raise_exception=True)
def day_sessions(request, day):
    day, files = _day_files(day)
    form = SessionSearchForm(request.GET or None)
    page = None
    if not form.is_bound or form.is_valid():
        session_filter = form.session_filter() if form.is_bound else protocol_log_files.SessionFilter()
        sessions = protocol_log_files.sessions(files, session_filter)
        page = Paginator(sessions, SESSIONS_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"day": day, "day_key": f"{day:%Y%m%d}", "files": files, "form": form, "page": page}
    return render(request, "ops/protocol_logs/sessions.html", context)


@require_safe
@permission_required(VIEW_PROTOCOL_LOGS, raise_exception=True)
def session(request, day, session_id):
    day, files = _day_files(day)
    transcript = protocol_log_files.transcript(files, session_id)
    if transcript is None:
        raise Http404("There is no such session in this day's Send protocol log.")
    context = {"day": day, "day_key": f"{day:%Y%m%d}", "transcript": transcript, "summary": transcript.summary}
    return render(request, "ops/protocol_logs/session.html", context)


class _Snapshot:
    """The first ``size`` bytes of an open file: today's log keeps growing while it downloads, and the body
    must match the Content-Length sent first."""

    def __init__(self, file, size):
        self._file = file
        self._left = size

    def read(self, size=-1):
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._file.read(size)
        self._left -= len(data)
        return data

    def close(self):
        self._file.close()


@require_safe
@permission_required(VIEW_PROTOCOL_LOGS, raise_exception=True)
def download(request, file_name):
    log = protocol_log_files.log_file(file_name)  # None for anything but a log file name inside the folder
    if log is None:
        raise Http404("There is no such Send protocol log file.")
    try:
        file = open(log.path, "rb")
    except OSError:  # removed by circular logging since it was listed
        raise Http404("There is no such Send protocol log file.") from None
    size = os.fstat(file.fileno()).st_size
    response = FileResponse(
        _Snapshot(file, size), as_attachment=True, filename=log.name, content_type="text/plain; charset=utf-8"
    )
    response["Content-Length"] = str(size)
    return response
