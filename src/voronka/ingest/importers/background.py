"""A large file read, checked and shaped in a second process while this one writes.

Reading a row, checking it and working out what it implies (``shaping.shape``) is pure Python: a
third of a million-deal import. A child process does it and sends the shaped records in chunks
through a pipe; this process only adds ids and stores them, so the two cores work at once. The
child keeps at most a few chunks ready when the writer lags, so memory stays bounded.

The child is a new interpreter (no copy of this process's open connections), sends what it
could not read as the same ``ImportFailed`` the reading would raise here, and ends when the pipe
closes: a writer that fails or is killed leaves no reader behind.
"""

from __future__ import annotations

import gc
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from typing import Any

from voronka.errors import ImportFailed, VoronkaError
from voronka.i18n import Message
from voronka.ingest.importers.deals import Layout, records_of
from voronka.ingest.importers.shaping import NewDeal, Placement, Shaped, laid_out, shape
from voronka.tabular.files import TableFile
from voronka.tabular.report import ImportReport


@contextmanager
def rare_collections(large: bool, young: int = 50_000) -> Iterator[None]:
    """Collect garbage rarely while a large load runs, then as before.

    The load makes millions of objects that live until their batch is stored, none of them in
    cycles; with Python's default thresholds the collector walked them again every 700
    allocations. A million-deal import as a library call took 71 s, against 58 s for
    ``voronka import``, whose process collects rarely anyway. The reader collects rarely too: it
    pickled its chunks in 8.4 s with the default thresholds, 4.9 s without."""
    before = gc.get_threshold()
    if large and before[0] < young:
        gc.set_threshold(young, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


CHUNK = 2_000
"""Records per message: large enough that pickling is cheap per record, small enough that
the writer starts at once."""


def can_read_in_background() -> bool:
    """Whether a second process can be started here: a POSIX system and a Python to start (a frozen
    application's executable is not one)."""
    return os.name == "posix" and bool(sys.executable) and not getattr(sys, "frozen", False)


def shaped_in_background(table: TableFile, layout: Layout, report: ImportReport) -> Generator[Shaped, None, None]:
    """The file's good rows, shaped, as ``records_of`` and ``shape`` would give them here; its bad
    rows are added to ``report`` (and the reader's own refusals to ``table.rejected``) at the end."""
    return _from_reader(table, layout, report, None)


def laid_out_in_background(
    table: TableFile, layout: Layout, report: ImportReport, placement: Placement
) -> Generator[NewDeal, None, None]:
    """The file's good rows laid out for ``placement`` (``shaping.laid_out``), as new deals of an
    account that has none yet; bad rows as in ``shaped_in_background``."""
    return _from_reader(table, layout, report, placement)


def _from_reader(
    table: TableFile, layout: Layout, report: ImportReport, placement: Placement | None
) -> Generator[Any, None, None]:
    """What the reader sends, in the file's order.

    The child is a fresh ``python -m`` of this module, not a ``multiprocessing`` process: those
    import the caller's main script again, and a script without a ``__main__`` guard would run a
    second time inside the reader.
    """
    readable, writable = os.pipe()
    command = [sys.executable, "-m", "voronka.ingest.importers.reader", str(writable)]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, pass_fds=(writable,), close_fds=True)
    os.close(writable)  # the child holds the only writing end: its exit is our end of file
    receiver = Connection(readable, writable=False)
    try:
        assert child.stdin is not None
        with suppress(BrokenPipeError), child.stdin:  # a reader that died at once is told below
            child.stdin.write(pickle.dumps((table, layout, placement), protocol=pickle.HIGHEST_PROTOCOL))
        yield from _received(receiver, table, report)
    finally:
        receiver.close()
        if child.poll() is None:
            child.kill()
        child.wait()


def _received(receiver: Connection, table: TableFile, report: ImportReport) -> Iterator[Any]:
    while True:
        try:
            kind, payload = receiver.recv()
        except EOFError:
            raise ImportFailed(reason=Message("import.reader_stopped", {"file": table.path.name})) from None
        if kind == "items":
            yield from payload
        elif kind == "done":
            rejected, refused = payload
            report.rejected.extend(rejected)
            table.rejected.extend(refused)
            return
        elif kind == "failed":
            error_class, params = payload
            raise error_class(**params)
        else:  # "crashed": a bug in the reader, told as one line like any other
            raise RuntimeError(payload)


def read_into(sender: Connection, table: TableFile, layout: Layout, placement: Placement | None) -> None:
    """The child: read, check and shape every row (and lay it out for ``placement``, if given),
    sending chunks, then the rows it refused."""
    outbox = _Outbox(sender)
    report = ImportReport(file=table.path.name)
    last: tuple[str, Any]
    try:
        chunk: list[Any] = []
        for record in records_of(table.rows(), layout, report):
            item = shape(record, layout.last_position)
            chunk.append(item if placement is None else laid_out(item, placement))
            if len(chunk) >= CHUNK:
                outbox.put(("items", chunk))
                chunk = []
        outbox.put(("items", chunk))
        last = ("done", (report.rejected, table.rejected))
    except _WriterGone:
        outbox.close()
        return
    except VoronkaError as error:
        last = ("failed", (type(error), error.params))
    except Exception as error:  # a bug: the writer raises it as one line, like its own
        last = ("crashed", f"{type(error).__name__}: {error}")
    with suppress(_WriterGone):
        outbox.put(last)
    outbox.close()


class _WriterGone(Exception):
    """The writer closed its end of the pipe (it failed, finished early or was killed)."""


class _Outbox:
    """Messages pickled here and written to the pipe by a thread of their own, a few ahead: a send
    blocks until the writer has read the message, and reading rows meanwhile is what the child is
    for (without it the writer waited for the child a quarter of the time)."""

    def __init__(self, sender: Connection, ahead: int = 8) -> None:
        self.sender = sender
        self.pending: queue.Queue[bytes | None] = queue.Queue(maxsize=ahead)
        self.gone = threading.Event()
        self.thread = threading.Thread(target=self._send_all, name="voronka-reader-send", daemon=True)
        self.thread.start()

    def put(self, message: tuple[str, Any]) -> None:
        blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        while not self.gone.is_set():
            try:
                self.pending.put(blob, timeout=0.5)
                return
            except queue.Full:
                continue
        raise _WriterGone

    def close(self) -> None:
        if not self.gone.is_set():
            with suppress(queue.Full):
                self.pending.put(None, timeout=60)
            self.thread.join(timeout=60)
        self.sender.close()

    def _send_all(self) -> None:
        while (blob := self.pending.get()) is not None:
            try:
                self.sender.send_bytes(blob)
            except OSError:  # BrokenPipeError: nobody reads any more
                self.gone.set()
                return
