"""Container-level checks that catch truncated PNG and JPEG files before decoding.

Decoders differ in how they treat a file that ends early: libjpeg (under
OpenCV 4.x) warns and returns a grey-padded image, and libpng can accept a
stream whose final chunks are missing.  Walking the container structure is
cheap (no pixel decoding) and makes "truncated" a hard error whatever the
OpenCV version.  These checks look at structure only; pixel-level corruption
is left to the decoder.
"""

from __future__ import annotations

import re

__all__ = ["sniff_container", "check_png_structure", "check_jpeg_structure", "SUPPORTED_CONTAINERS"]

SUPPORTED_CONTAINERS = ("PNG", "JPEG", "BMP", "TIFF")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIGNATURES = (
    (_PNG_SIGNATURE, "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
# In JPEG entropy-coded data 0xFF is always followed by a stuffed 0x00 or a
# restart marker (D0..D7); any other byte after 0xFF starts the next segment.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def sniff_container(data: bytes) -> str | None:
    """The container named by the file's signature bytes (``"PNG"``, ...), or None."""
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    return None


def check_png_structure(data: bytes) -> None:
    """Raise ValueError unless ``data`` is a sequence of whole PNG chunks ending in IEND.

    Bytes after IEND are ignored, as decoders ignore them.
    """
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("missing PNG signature")
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk_type = data[pos + 4 : pos + 8]
        end = pos + 12 + length  # length, type, data, CRC
        if end > len(data):
            # The chunk type is named only when it is a valid one (4 ASCII letters): file bytes are never quoted.
            name = repr(chunk_type.decode("ascii")) if chunk_type.isalpha() and chunk_type.isascii() else "(invalid type)"
            raise ValueError(
                f"truncated PNG: chunk {name} at byte {pos} needs {end} bytes, file has {len(data)}"
            )
        if chunk_type == b"IEND":
            return
        pos = end
    raise ValueError(f"truncated PNG: no IEND chunk in {len(data)} bytes")


def check_jpeg_structure(data: bytes) -> None:
    """Raise ValueError unless ``data`` holds whole JPEG segments up to an EOI marker.

    Segments are skipped by their declared length, so an embedded EXIF
    thumbnail (a whole JPEG inside APP1) cannot pass for the main image's end.
    """
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("missing JPEG SOI marker")
    pos = 2
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"corrupt JPEG: expected a marker at byte {pos}, found 0x{data[pos]:02x}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers carry no length
            pos += 2
            continue
        if pos + 4 > len(data):
            break
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end > len(data):
            raise ValueError(
                f"truncated JPEG: segment 0xFF{marker:02X} at byte {pos} runs past the end ({len(data)} bytes)"
            )
        pos = end
        if marker == 0xDA:  # SOS: entropy-coded data follows until the next real marker
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                break
            pos = found.start()
    raise ValueError(f"truncated JPEG: no EOI marker in {len(data)} bytes")
