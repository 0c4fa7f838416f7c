"""CSV exports, streamed: rows are read and written a chunk at a time, never all in memory.

Cells are guarded against formula injection (OWASP "CSV Injection"): a text cell that a
spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) gets a leading ``'``, which makes it plain text. A plain number such as an
E.164 phone (``+79123456789``) cannot carry a formula and is written as it is.
(defusedcsv does the same, but it prefixes every E.164 phone and misses tab and CR.)
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from sqlmodel import Session
from starlette.responses import StreamingResponse

from referral_app.domain.clock import utcnow
from referral_app.infra.db import session_scope

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def safe_cell(value: object) -> str:
    """One cell as text: timestamps in ISO 8601 UTC, booleans as true/false, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    text = str(value)
    if text.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_lines(header: Iterable[str], chunks: Iterable[list[tuple]]) -> Iterator[str]:
    """The CSV text of ``header`` and the rows, one piece per chunk of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(header)
    for rows in chunks:
        writer.writerows([safe_cell(value) for value in row] for row in rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def csv_response(name: str, header: Iterable[str], read: Callable[[Session], Iterator[list[tuple]]]) -> StreamingResponse:
    """A download named ``<name>-<UTC date>.csv``; ``read`` yields chunks of rows from a session."""

    def body() -> Iterator[str]:
        with session_scope() as db:
            yield from csv_lines(header, read(db))

    filename = f"{name}-{utcnow().date().isoformat()}.csv"
    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
