"""``python -m voronka.ingest.importers.reader FD``: the second process of a large import.

The table and its layout come pickled on standard input from the ``voronka import`` that started
it; the shaped records go back through descriptor FD (``background.read_into``). A module of its
own, which the importers' package never imports, so that running it does not import it twice.
"""

from __future__ import annotations

import pickle
import signal
import sys
from multiprocessing.connection import Connection

from voronka.ingest.importers.background import rare_collections, read_into


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the writer's to handle; it ends us
    table, layout, placement = pickle.load(sys.stdin.buffer)
    with rare_collections(large=True):
        read_into(Connection(int(sys.argv[1]), readable=False), table, layout, placement)


if __name__ == "__main__":
    main()
