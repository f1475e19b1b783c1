"""``cmdlet(line, stdin="")`` runs one shell line as the user "tester" and returns (status, stdout, stderr)."""

import io
from dataclasses import dataclass

import pytest

from sendconn.shell.runner import run_line


@dataclass
class Result:
    status: int
    out: str
    err: str


@pytest.fixture
def cmdlet(db):
    def run(line, stdin=""):
        out, err = io.StringIO(), io.StringIO()
        status = run_line(line, stdin=io.StringIO(stdin), stdout=out, stderr=err, caller="tester")
        return Result(status, out.getvalue(), err.getvalue())

    return run
