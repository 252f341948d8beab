"""An export as chunks of text for a StreamingHttpResponse: CSV (a header, then RFC 4180 rows) or JSONL (one
object a line). Each chunk is ``CHUNK_ROWS`` rows, so memory holds one chunk whatever the range."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from itertools import islice

from .selectors import CHUNK_ROWS, Dataset, csv_rows, jsonl_lines

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


def csv_chunks(dataset: Dataset, start: datetime, end: datetime) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(dataset.column_names)
    rows = csv_rows(dataset, start, end)
    while True:
        writer.writerows(islice(rows, CHUNK_ROWS))
        text = buffer.getvalue()
        if not text:
            return
        yield text
        buffer.seek(0)
        buffer.truncate()


def jsonl_chunks(dataset: Dataset, start: datetime, end: datetime) -> Iterator[str]:
    lines = jsonl_lines(dataset, start, end)
    while chunk := list(islice(lines, CHUNK_ROWS)):
        yield "\n".join(chunk) + "\n"


CHUNKS = {"csv": csv_chunks, "jsonl": jsonl_chunks}
