"""Plain text files, and the byte checks every text-like format shares.

Decisions (see also :mod:`kg.sources.loaders`):

- An **empty** file (0 bytes, or only whitespace) is an error, not an empty document:
  an empty source is nearly always a mistake (a failed export, a truncated copy), and a
  silent empty document would hide it.
- A file with NUL bytes, or with many control bytes, is reported as a **binary file**
  rather than decoded into garbage. UTF-16 text is recognised by its byte-order mark.
- Text files must be **UTF-8** (a UTF-8 BOM is dropped); invalid bytes are an error that
  names the byte offset and line, because guessing an encoding silently corrupts names.
- Line endings become ``\\n``; nothing else in the text is changed.
"""

from __future__ import annotations

import codecs

from kg.errors import SourceError
from kg.sources.document import Document
from kg.sources.raw import Raw

_SNIFF = 8192  # bytes looked at to decide "binary"
# Control bytes that do not occur in text. Tab, LF, VT, FF, CR, backspace and ESC
# (terminal colour codes in logs) do, so they are allowed.
_BINARY_BYTES = bytes(b for b in range(32) if b not in b"\t\n\x0b\x0c\r\x08\x1b") + b"\x7f"


def check_text_bytes(raw: Raw) -> None:
    """Raise SourceError for an empty or binary file; UTF-16 with a BOM passes."""
    data = raw.data
    if not data:
        raise SourceError(raw.where, "empty file (0 bytes); nothing to extract")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return
    if b"\x00" in data:
        raise SourceError(raw.where, f"binary file (contains NUL bytes), not {raw.media_type}; "
                                     "convert it to text first")
    sample = data[:_SNIFF]
    controls = len(sample) - len(sample.translate(None, _BINARY_BYTES))
    if controls * 50 > len(sample):  # more than 2% control bytes
        raise SourceError(raw.where, f"binary file ({controls} control bytes in the first "
                                     f"{len(sample)}), not {raw.media_type}")


def decode_strict(raw: Raw, encoding: str = "utf-8") -> str:
    """Decode ``raw.data``: BOM first, then ``encoding``; invalid bytes raise SourceError."""
    data = raw.data
    if data.startswith(codecs.BOM_UTF8):
        encoding, data = "utf-8", data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"  # the codec reads and drops the BOM
    try:
        return data.decode(encoding)
    except LookupError as exc:
        raise SourceError(raw.where, f"unknown text encoding {encoding!r}") from exc
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start:exc.end].hex(" ")
        raise SourceError(
            raw.where,
            f"not valid {encoding.upper()} text: {exc.reason} at byte {exc.start} "
            f"(bytes {bad}); re-save the file as UTF-8",
            line,
        ) from exc


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def require_text(raw: Raw, text: str, what: str = "text") -> str:
    """``text`` unless it is blank; a blank result is an error naming ``what`` was missing."""
    if not text.strip():
        raise SourceError(raw.where, f"no {what} to extract (the file holds only whitespace "
                                     "or markup)")
    return text


def parse_text(raw: Raw) -> Document:
    """A plain text file: UTF-8 (or the HTTP charset for URLs), newlines normalised."""
    check_text_bytes(raw)
    text = normalise_newlines(decode_strict(raw, raw.charset or "utf-8"))
    return raw.document(require_text(raw, text))
