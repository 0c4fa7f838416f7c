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
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime

from starlette.responses import StreamingResponse

from referral_app.domain.clock import utcnow

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


def csv_lines(header: Iterable[str] | None, chunks: Iterable[list[tuple]]) -> Iterator[str]:
    """The CSV text of ``header`` (None: no header line) and the rows, one piece per chunk of
    rows; the header goes with the first piece, or alone if there are no rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    if header is not None:
        writer.writerow(header)
    for rows in chunks:
        writer.writerows([safe_cell(value) for value in row] for row in rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


async def csv_pieces(header: Iterable[str], chunks: AsyncIterator[list[tuple]]) -> AsyncIterator[str]:
    """The pieces of :func:`csv_lines` for chunks that arrive asynchronously (a service's stream)."""
    first: Iterable[str] | None = header
    async for rows in chunks:
        yield "".join(csv_lines(first, [rows]))
        first = None
    if first is not None:
        yield "".join(csv_lines(first, []))


def csv_response(name: str, header: Iterable[str], chunks: AsyncIterator[list[tuple]]) -> StreamingResponse:
    """A download named ``<name>-<UTC date>.csv`` of ``header`` and the rows of ``chunks``
    (a service's stream: each chunk is read when the client has taken the one before)."""
    filename = f"{name}-{utcnow().date().isoformat()}.csv"
    return StreamingResponse(
        csv_pieces(header, chunks),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
