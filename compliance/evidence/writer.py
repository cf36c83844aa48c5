"""Writing one dataset into the bundle: CSV (Excel-safe) and JSON, hashed as they are written.

Formats (documented for auditors in the README and the bundle's report):

- **CSV**: UTF-8 with a byte-order mark (so Excel detects the encoding), comma-separated, a
  header row, ``\\r\\n`` line ends, RFC 4180 quoting. A *string* value beginning with ``=``,
  ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a single quote ``'`` (OWASP
  "CSV injection"), so a spreadsheet shows it as text instead of running it as a formula. Numbers
  the exporter writes as numbers (ids, counts, sequences) are never prefixed: they come from
  numeric columns, cannot carry a formula, and a negative number must stay a number. A string
  that merely looks numeric, such as ``-5`` typed into a free-text field, is still prefixed.
  Lists are joined with ``"; "``; objects are written as ``key=value`` pairs, except free-form
  JSON columns (an audit event's ``data``, an alert's ``details``) written as compact JSON (sorted
  keys, no spaces; a deployment's ``decision_record`` is stored in that form and copied as it is,
  see ``RawJSON``); booleans as ``true``/``false``; empty values as an empty cell; times in ISO
  8601 UTC.
- **JSON**: one JSON array per dataset, one object per line (``[`` and ``]`` on their own lines),
  UTF-8 without BOM. It keeps the raw values (no quote prefix) and the structure (lists and
  objects), so ``json.load`` reads it and a line-oriented tool can stream it.

Both files of a dataset hold the same rows in the same order. SHA-256 and size are computed
over the exact bytes stored in the ZIP (before compression), which is what the manifest lists.
"""
import csv
import hashlib
import io
import json
import queue
import shutil
import tempfile
import threading
from datetime import date, datetime, timezone as dt_timezone
from decimal import Decimal

NEUTRALISED_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_BOM = "\ufeff"


class HashingWriter:
    """A binary sink that counts and hashes what passes through it."""

    def __init__(self, stream):
        self.stream = stream
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.stream.write(data)


_UTC = dt_timezone.utc


def iso(value) -> str | None:
    if value is None:
        return None
    if type(value) is datetime and value.tzinfo is _UTC:  # what the database hands back: no conversion
        return value.isoformat()[:-6] + "Z"
    if isinstance(value, datetime):
        return value.astimezone(_UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def json_value(value):
    """A row value as JSON keeps it: datetimes as ISO 8601 UTC, everything else as is."""
    if isinstance(value, (datetime, date)):
        return iso(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def neutralise(text: str) -> str:
    return "'" + text if text.startswith(NEUTRALISED_PREFIXES) else text


def _flat(value) -> str:
    kind = type(value)  # exact types first (the common cases), then the general rules
    if kind is str:
        return value
    if value is None:
        return ""
    if kind is dict:
        return " ".join([f"{k}={_flat(v)}" for k, v in value.items()])
    if kind is list:
        return "; ".join([_flat(v) for v in value])
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return " ".join(f"{k}={_flat(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(_flat(v) for v in value)
    if isinstance(value, (datetime, date)):
        return iso(value)
    return str(value)


def csv_value(value):
    """A row value as a CSV cell: numbers stay numbers, every string is neutralised. (Ordered for
    speed: most cells are plain strings.)"""
    kind = type(value)
    if kind is str:
        return "'" + value if value.startswith(NEUTRALISED_PREFIXES) else value
    if kind is int or kind is float or kind is Decimal:
        return value
    if value is None or kind is bool:
        return _flat(value)
    return neutralise(_flat(value))


def _json_default(value):
    if isinstance(value, (datetime, date)):
        return iso(value)
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_json_line = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode
_json_cell_text = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=_json_default).encode


class RawJSON(str):
    """JSON text a dataset read from the database and writes as it is, without decoding it (a
    deployment's decision record, stored as canonical JSON text by ``releases.fields``): into the
    JSON line verbatim, as a JSON value rather than a string, and into the CSV cell with only the
    CSV quoting (canonical text is already the compact form a free-form JSON cell takes). The
    dataset vouches that the text is valid JSON; ``DatasetWriter`` does not parse it."""

    __slots__ = ()


def _json_cell(value) -> str:
    """Free-form JSON (an audit event's data, an alert's details) as compact JSON text in one cell."""
    if value is None:
        return ""
    if type(value) is RawJSON:
        return neutralise(str(value))
    return neutralise(_json_cell_text(value))


def _json_line_raw(row: dict, raw: list[str]) -> str:
    """One row's JSON line when some of its free-form JSON cells (``raw``: their names) are RawJSON:
    encoded with ``null`` in their place, then each ``"name": null`` is replaced by the text. The
    pattern cannot occur inside an encoded string (every quote there is escaped), and keys are
    unique, so the first match is the cell."""
    line = _json_line({k: (None if k in raw else v) for k, v in row.items()})
    for name in raw:
        marker = f"{_json_line(name)}: null"
        at = line.index(marker) + len(marker) - 4
        line = f"{line[:at]}{row[name]}{line[at + 4:]}"
    return line


class ZipPipe:
    """The ZIP side of writing (deflate, CRC, SHA-256, file writes) run in order by one background
    thread, so that it overlaps with reading and encoding the next batch: zlib and hashlib release
    the GIL on large buffers, and on a million rows compressing is a third of the work. At most
    ``depth`` batches wait in the queue, so memory stays bounded. An error in the thread is raised
    in the caller at its next ``submit`` or at ``close``.

    ``ZipPipe(threaded=False)`` runs every operation at once, in the caller."""

    def __init__(self, depth: int = 4, threaded: bool = True):
        self._error: BaseException | None = None
        self._cancelled = False
        self._queue = queue.Queue(depth) if threaded else None
        self._thread = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="evidence-zip", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while (op := self._queue.get()) is not None:
            if self._error is None and not self._cancelled:
                try:
                    op[0](*op[1:])
                except BaseException as exc:  # handed to the caller
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, fn, *args) -> None:
        self._raise()
        if self._queue is None:
            fn(*args)
        else:
            self._queue.put((fn, *args))

    def _stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def close(self) -> None:
        """Wait until everything submitted is written."""
        self._stop()
        self._raise()

    def cancel(self) -> None:
        """Drop what is still queued and stop the thread (after a failure)."""
        self._cancelled = True
        self._stop()
        self._error = None


class DatasetWriter:
    """Streams one dataset: its CSV straight into the ZIP, its JSON into a temporary file that is
    copied into the ZIP afterwards (a ZipFile has only one member open for writing at a time, and
    reading the rows twice would double the database work). Memory holds a few batches at most.

    Rows are encoded in the caller; the bytes go through ``pipe`` (see ZipPipe). ``files`` (name
    -> sha256, size, rows) is complete once the pipe is closed."""

    def __init__(self, zf, name: str, columns: list[str], json_columns=(), pipe: ZipPipe | None = None):
        self.zf = zf
        self.name = name
        self.columns = columns
        self._json_indexes = [i for i, c in enumerate(columns) if c in json_columns]
        self._json_names = [columns[i] for i in self._json_indexes]
        self.rows = 0
        self.files: dict[str, dict] = {}
        self._pipe = pipe or ZipPipe(threaded=False)
        self._csv_member = self._json_tmp = None
        self._pipe.submit(self._open, CSV_BOM.encode("utf-8") + self._csv_text([columns]))

    def _open(self, header: bytes) -> None:
        self._csv_member = self.zf.open(f"{self.name}.csv", "w", force_zip64=True)
        self._csv = HashingWriter(self._csv_member)
        self._csv.write(header)
        self._json_tmp = tempfile.TemporaryFile()
        self._json = HashingWriter(self._json_tmp)
        self._json.write(b"[")

    def _write(self, csv_bytes: bytes, json_bytes: bytes) -> None:
        self._csv.write(csv_bytes)
        self._json.write(json_bytes)

    @staticmethod
    def _csv_text(rows) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        return buffer.getvalue().encode("utf-8")

    def write_batch(self, rows: list) -> None:
        """Write rows given as dicts (by column name) or as sequences in column order.

        The common case is fast: dicts whose keys are exactly the columns in order (as the
        datasets build them) are encoded as they are, without being copied."""
        if not rows:
            return
        columns = self.columns
        if isinstance(rows[0], dict):
            if all(len(row) == len(columns) for row in rows) and list(rows[0]) == columns and all(
                list(row) == columns for row in rows[1:]
            ):
                objects = rows
            else:
                objects = [{c: row.get(c) for c in columns} for row in rows]
            values = [row.values() for row in objects]
        else:
            values = rows
            objects = [dict(zip(columns, row, strict=True)) for row in rows]
        if self._json_indexes:
            # Free-form JSON cells are written from the objects below: not flattened first.
            values = [list(row) for row in values]
            for row in values:
                for index in self._json_indexes:
                    row[index] = None
        # csv_value inlined for the two commonest cells (a plain string, an int): a million rows
        # of twenty cells make the function call itself the cost. Free-form JSON cells after.
        prefixes = NEUTRALISED_PREFIXES
        width = len(columns)
        cells = [
            [
                (("'" + v) if v.startswith(prefixes) else v) if type(v) is str
                else v if type(v) is int else csv_value(v)
                for v in row
            ]
            for row in values
        ]
        if any(len(c) != width for c in cells):
            raise ValueError(f"{self.name}: a row does not have the {width} columns")
        for index in self._json_indexes:
            name = columns[index]
            for cell_row, row in zip(cells, objects, strict=True):
                cell_row[index] = _json_cell(row[name])
        lines = ",\n".join([self._line(row) for row in objects] if self._json_indexes else map(_json_line, objects))
        json_bytes = (("\n" if self.rows == 0 else ",\n") + lines).encode("utf-8")
        self._pipe.submit(self._write, self._csv_text(cells), json_bytes)
        self.rows += len(rows)

    def _line(self, row: dict) -> str:
        raw = [name for name in self._json_names if type(row[name]) is RawJSON]
        return _json_line_raw(row, raw) if raw else _json_line(row)

    def close(self) -> dict[str, dict]:
        """Finish both members (once the pipe reaches this point); returns ``files``, filled then."""
        self._pipe.submit(self._finish)
        return self.files

    def _finish(self) -> None:
        self._csv_member.close()
        self._json.write(b"\n]\n")
        self._json_tmp.seek(0)
        with self.zf.open(f"{self.name}.json", "w", force_zip64=True) as member:
            shutil.copyfileobj(self._json_tmp, member, 1024 * 1024)
        self._json_tmp.close()
        self.files.update({
            f"{self.name}.csv": {"sha256": self._csv.sha256.hexdigest(), "size": self._csv.size, "rows": self.rows},
            f"{self.name}.json": {"sha256": self._json.sha256.hexdigest(), "size": self._json.size, "rows": self.rows},
        })

    def abort(self) -> None:
        """After a failure (and after ``pipe.cancel()``): close what is open, keep nothing."""
        try:
            if self._csv_member is not None:
                self._csv_member.close()
        finally:
            if self._json_tmp is not None:
                self._json_tmp.close()


def write_member(zf, name: str, data: bytes) -> dict:
    with zf.open(name, "w") as member:
        member.write(data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "rows": None}
