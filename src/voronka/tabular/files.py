"""Reading a table from a file: CSV of any usual encoding and delimiter, or the first sheet of an XLSX.

Detection happens before anything is imported, so a file that cannot be read changes nothing.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from voronka.errors import ImportFailed
from voronka.i18n import Message
from voronka.tabular.report import Rejected

_SAMPLE = 64 * 1024
MAX_CELL = 100_000
"""Characters a cell may hold; a longer one makes its row a bad row (a description, not a novel)."""
_CSV_FIELD_LIMIT = 64 << 20
MAX_UNPACKED = 512 << 20
"""Bytes an .xlsx may expand to: a 4 MB zip that unpacks to 1.5 GB is refused, not read."""
MAX_ROWS = 5_000_000
_CHUNK = 1 << 20
_DELIMITERS = (",", ";", "\t")
_XLSX_MAGIC = b"PK\x03\x04"
_HTML = "html"
"""The ``delimiter`` of a table read from an HTML page (Bitrix24 saves its Excel export as one)."""


@dataclass(frozen=True)
class TableFile:
    """A readable table: its header and a way to iterate its rows with their line numbers."""

    path: Path
    header: tuple[str, ...]
    encoding: str | None
    delimiter: str | None
    rows_estimate: int
    sheet: str | tuple[str, ...] | None = None
    rejected: list[Rejected] = field(default_factory=list)
    """Rows the reading itself refused (another encoding, a cell too long), filled as rows are read."""
    title_lines: int = 0
    """Lines above the header (a report's title line, as Yandex Direct's Reports API writes one)."""

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number in the file, cells) for every data row; blank rows are skipped, and rows
        that cannot be read as data are listed in ``rejected`` with the reason."""
        if self.delimiter == _HTML:
            source: Iterator[tuple[int, list[str]]] = iter(_html_rows(self.path, self.encoding or "utf-8")[1:])
        elif self.encoding is None:
            source = _xlsx_rows(self.path, sheet=self.sheet)
        else:
            source = self._csv_rows()
        for line, cells in source:
            if cells and max(map(len, cells)) > MAX_CELL:
                self.rejected.append(Rejected(line, Message("import.cell_too_long", {"limit": MAX_CELL})))
                continue
            yield line, cells

    def _csv_rows(self) -> Iterator[tuple[int, list[str]]]:
        """Rows as the csv module reads them, but for a quote left open: the csv module reads on
        until a quote closes it (or the file ends) and makes the rows between one cell. A row that
        ran over lines which are rows themselves, or to the end of the file, is rejected saying so,
        and the lines it took are read again as rows."""
        encoding = self.encoding or "utf-8-sig"
        delimiter = self.delimiter or ","
        feed = _Feed(_decoded_lines(self.path, encoding, self.rejected))
        csv.field_size_limit(_CSV_FIELD_LIMIT)
        reader = csv.reader(feed, delimiter=delimiter)
        try:
            for _ in range(1 + self.title_lines):
                next(reader, None)
            feed.taken.clear()
            while (cells := next(reader, None)) is not None:
                taken, feed.taken = feed.taken, []
                over_lines = len(taken) > 1 or any("\n" in cell for cell in cells)  # the last line, left open
                if over_lines and _quote_left_open(taken, delimiter, len(self.header)):
                    self.rejected.append(Rejected(taken[0][0], Message("import.unclosed_quote", {})))
                    feed.again(taken[1:])
                    reader = csv.reader(feed, delimiter=delimiter)  # the old one is inside the quote
                    continue
                if "".join(cells).strip():
                    yield taken[-1][0], cells
        except csv.Error as exc:
            raise _fail("bad_csv", file=self.path.name, line=feed.number, reason=str(exc)) from None


class _Feed:
    """The lines the csv module reads, numbered; those of a rejected row can be read again."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines, self.number = lines, 0
        self.pending: list[tuple[int, str]] = []
        self.taken: list[tuple[int, str]] = []

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self.pending:
            number, text = self.pending.pop(0)
        else:
            text = next(self.lines)
            self.number += 1
            number = self.number
        self.taken.append((number, text))
        return text

    def again(self, lines: list[tuple[int, str]]) -> None:
        self.pending[:0] = lines


def _quote_left_open(taken: list[tuple[int, str]], delimiter: str, width: int) -> bool:
    """Whether a row read over several lines is a quote nobody closed rather than a cell that holds
    line breaks: it ran to the end of the file (its quotes do not pair up), or it swallowed a line
    that is a whole row by itself."""
    if sum(text.count('"') for _, text in taken) % 2:
        return True
    return width > 1 and any(
        len(next(csv.reader([text.rstrip("\r\n")], delimiter=delimiter), [])) >= width for _, text in taken[1:]
    )


def _fail(key: str, **params: object) -> ImportFailed:
    return ImportFailed(reason=Message(f"import.{key}", params))


def open_table(path: Path, sheet: str | tuple[str, ...] | None = None, *, titled: bool = False) -> TableFile:
    """Detect kind, encoding and delimiter and read the header; raise ImportFailed if unreadable.
    ``titled``: a first line without the delimiter of the line after it is a title above the
    header (Yandex Direct's report name and dates), not the header."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_SAMPLE)
    except OSError as exc:
        raise _fail("cannot_open", file=path.name, reason=exc.strerror or str(exc)) from None
    if not head.removeprefix(codecs.BOM_UTF8).strip():  # a BOM alone is an empty file too
        raise _fail("empty", file=path.name)
    if head.startswith(_XLSX_MAGIC):
        return _open_xlsx(path, sheet)
    if _looks_like_html(head):
        return _open_html(path)
    if b"\x00" in head:
        raise _fail("not_text", file=path.name)
    encoding = _detect_encoding(path)
    lines = head.decode(encoding, errors="replace").lstrip("\ufeff").splitlines() or [""]
    title = int(titled and len(lines) > 1 and _detect_delimiter(lines[1]) not in lines[0])
    delimiter = _detect_delimiter(lines[title])
    header = next(csv.reader(io.StringIO(lines[title]), delimiter=delimiter), [])
    if not any(h.strip() for h in header):
        raise _fail("no_header", file=path.name)
    estimate = max(_count_lines(path) - 1 - title, 0)
    return TableFile(path, tuple(h.strip() for h in header), encoding, delimiter, estimate, title_lines=title)


def _detect_encoding(path: Path) -> str:
    """The file's encoding, by its lines with letters beyond ASCII: UTF-8 (with or without BOM) when
    most of them are UTF-8, else Windows-1251. Lines in the other one are rejected when read."""
    utf8 = other = 0
    with path.open("rb") as handle:
        for raw in handle:
            if raw.isascii():
                continue
            if _is_utf8(raw):
                utf8 += 1
            else:
                other += 1
    return "utf-8-sig" if utf8 >= other else "cp1251"


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decoded_lines(path: Path, encoding: str, rejected: list[Rejected]) -> Iterator[str]:
    """The file's lines as text. A line in the other encoding (a UTF-8 line in a Windows-1251 file,
    or the reverse) would be stored as mojibake: it is rejected and read as an empty line, so the
    line numbers of the rest stay true."""
    utf8_file = encoding.startswith("utf-8")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            if raw.isascii():
                yield raw.decode("ascii")
            elif _is_utf8(raw) == utf8_file:
                yield raw.decode("utf-8" if utf8_file else "cp1251", errors="replace")
            else:
                found, expected = ("UTF-8", "Windows-1251") if not utf8_file else ("Windows-1251", "UTF-8")
                rejected.append(Rejected(number, Message("import.other_encoding", {"found": found, "file": expected})))
                yield "\n" if raw.endswith(b"\n") else ""


def _detect_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            lines += chunk.count(b"\n")
    return lines


def _open_xlsx(path: Path, sheet: str | tuple[str, ...] | None) -> TableFile:
    rows = _xlsx_rows(path, include_header=True, sheet=sheet)
    try:
        _, header = next(rows)
    except StopIteration:
        raise _fail("empty", file=path.name) from None
    if not any(h.strip() for h in header):
        raise _fail("no_header", file=path.name)
    return TableFile(path, tuple(h.strip() for h in header), None, None, 0, sheet)


def _xlsx_rows(
    path: Path, *, include_header: bool = False, sheet: str | tuple[str, ...] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Rows of the (first found) sheet called ``sheet`` if the workbook has one, else of its first sheet."""
    from openpyxl import load_workbook

    _check_unpacked_size(path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise _fail("cannot_open", file=path.name, reason=type(exc).__name__) from None
    try:
        names = (sheet,) if isinstance(sheet, str) else sheet or ()
        found = next((name for name in names if name in workbook.sheetnames), None)
        chosen = workbook[found] if found is not None else workbook.worksheets[0]
        for number, values in enumerate(chosen.iter_rows(values_only=True), start=1):
            if number > MAX_ROWS:
                raise _fail("too_many_rows", file=path.name, limit=MAX_ROWS)
            if number == 1 and not include_header:
                continue
            cells = [_cell_text(v) for v in values]
            if any(c.strip() for c in cells):
                yield number, cells
    finally:
        workbook.close()


def has_sheet(path: Path, names: tuple[str, ...]) -> bool:
    """Whether ``path`` is a workbook with a sheet of one of these names."""
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        return False
    from openpyxl import load_workbook

    _check_unpacked_size(path)
    workbook = load_workbook(path, read_only=True)
    try:
        return any(name in workbook.sheetnames for name in names)
    finally:
        workbook.close()


def _check_unpacked_size(path: Path) -> None:
    """An .xlsx is a zip: refuse one that would unpack beyond ``MAX_UNPACKED`` before reading it."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(item.file_size for item in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail("cannot_open", file=path.name, reason=type(exc).__name__) from None
    if unpacked > MAX_UNPACKED:
        raise _fail("too_large_unpacked", file=path.name, size=unpacked >> 20, limit=MAX_UNPACKED >> 20)


def _cell_text(value: object) -> str:
    """Spreadsheet values as the text a CSV would hold (dates in ISO form)."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat())
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1024].lower()
    return start.startswith((b"<html", b"<!doctype", b"<table", b"<meta", b"<?xml")) and b"<t" in head.lower()


class _TableParser(HTMLParser):
    """The rows of the first table of a page: each ``<tr>``'s ``<th>``/``<td>`` texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[int, list[str]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._tables += 1
        elif tag == "tr" and self._tables == 1:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if any(c.strip() for c in self._row):
                self.rows.append((self.getpos()[0], self._row))
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html_rows(path: Path, encoding: str) -> list[tuple[int, list[str]]]:
    parser = _TableParser()
    parser.feed(path.read_text(encoding=encoding, errors="replace"))
    parser.close()
    return parser.rows


def _open_html(path: Path) -> TableFile:
    encoding = _detect_encoding(path)
    rows = _html_rows(path, encoding)
    if not rows or not any(h.strip() for h in rows[0][1]):
        raise _fail("no_header", file=path.name)
    return TableFile(path, tuple(h.strip() for h in rows[0][1]), encoding, _HTML, len(rows) - 1)
