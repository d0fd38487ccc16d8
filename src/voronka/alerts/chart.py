"""The funnel as a small PNG for e-mail (mail programs show PNG; most do not show SVG): one bar per
stage, as long as its share of the first. Written with zlib alone; the numbers sit beside it in the
e-mail's table, where they can be read and copied."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

WIDTH = 480
BAR = 22
GAP = 6
BLUE = (79, 124, 255)
WHITE = (255, 255, 255)


def funnel_png(reached: Sequence[int]) -> bytes:
    """Bars for ``reached`` (first stage first), centred like a funnel."""
    top = max(max(reached, default=0), 1)
    height = max(len(reached), 1) * (BAR + GAP) + GAP
    rows = []
    for y in range(height):
        index, within = divmod(y - GAP, BAR + GAP)
        length = 0
        if y >= GAP and within < BAR and index < len(reached):
            length = max(round(WIDTH * reached[index] / top), 2 if reached[index] else 0)
        start = (WIDTH - length) // 2
        line = bytes(WHITE) * start + bytes(BLUE) * length + bytes(WHITE) * (WIDTH - start - length)
        rows.append(b"\x00" + line)
    return _png(WIDTH, height, b"".join(rows))


def _png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
