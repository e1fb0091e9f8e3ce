"""Image dimensions read from a file's header, before any pixel is decoded.

The decode limit (:mod:`pyimgano.inputs.limits`) is checked against these
numbers, so a 2 MB PNG that claims 30000x30000 pixels is refused before a
decoder allocates 2.7 GB for it. Only the header bytes are read; nothing here
decompresses anything.

* PNG: the ``IHDR`` chunk (always first).
* JPEG: the first start-of-frame segment (``SOF0``..``SOF15`` except ``DHT``,
  ``JPG`` and ``DAC``), reached by skipping segments by their declared length.
* BMP: the DIB header's width and height (height may be negative: top-down).
* TIFF: ``ImageWidth`` / ``ImageLength`` of the first IFD (OpenCV decodes page 0).
"""

from __future__ import annotations

__all__ = ["image_dimensions"]

_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_TIFF_WIDTH, _TIFF_LENGTH = 256, 257
_TIFF_SHORT, _TIFF_LONG = 3, 4


def _png(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ValueError("PNG header has no IHDR chunk")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _jpeg(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                break
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return width, height
        if marker == 0xDA or length < 2:  # scan data before any frame header: malformed
            break
        pos += 2 + length
    raise ValueError("JPEG header has no start-of-frame segment")


def _bmp(data: bytes) -> tuple[int, int]:
    if len(data) < 26:
        raise ValueError("BMP header is truncated")
    dib_size = int.from_bytes(data[14:18], "little")
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER: unsigned 16-bit sides
        return int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little")
    width = int.from_bytes(data[18:22], "little", signed=True)
    height = int.from_bytes(data[22:26], "little", signed=True)
    return abs(width), abs(height)


def _tiff(data: bytes) -> tuple[int, int]:
    order = "little" if data[:2] == b"II" else "big"
    if len(data) < 8:
        raise ValueError("TIFF header is truncated")
    ifd = int.from_bytes(data[4:8], order)
    if ifd + 2 > len(data):
        raise ValueError("TIFF first IFD lies outside the file")
    count = int.from_bytes(data[ifd : ifd + 2], order)
    sides: dict[int, int] = {}
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(data):
            raise ValueError("TIFF first IFD is truncated")
        tag = int.from_bytes(data[entry : entry + 2], order)
        kind = int.from_bytes(data[entry + 2 : entry + 4], order)
        if tag in (_TIFF_WIDTH, _TIFF_LENGTH):
            size = 2 if kind == _TIFF_SHORT else 4 if kind == _TIFF_LONG else 0
            if not size:
                raise ValueError("TIFF image width/length has an unsupported field type")
            sides[tag] = int.from_bytes(data[entry + 8 : entry + 8 + size], order)
    if _TIFF_WIDTH not in sides or _TIFF_LENGTH not in sides:
        raise ValueError("TIFF first IFD has no image width/length")
    return sides[_TIFF_WIDTH], sides[_TIFF_LENGTH]


_READERS = {"PNG": _png, "JPEG": _jpeg, "BMP": _bmp, "TIFF": _tiff}


def image_dimensions(data: bytes, container: str) -> tuple[int, int]:
    """``(width, height)`` declared by the header of ``data``, a file of ``container``.

    Args:
      data: the file's bytes (only the header part is looked at).
      container: ``"PNG"``, ``"JPEG"``, ``"BMP"`` or ``"TIFF"``
        (:func:`~pyimgano.inputs.containers.sniff_container`).

    Raises:
      ValueError: the header is truncated or holds no dimensions, or an unknown
        ``container`` (the message lists the accepted ones).
    """
    reader = _READERS.get(container)
    if reader is None:
        raise ValueError(f"unknown container {container!r}; accepted: {sorted(_READERS)}")
    return reader(data)
