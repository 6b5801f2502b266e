"""PDF (pypdf) and Word .docx (python-docx) files → text.

PDF: text is extracted page by page and pages are joined by blank lines;
``metadata["pages"]`` is the page count and ``metadata["page_starts"]`` the character
offset where each page's text begins, so provenance can name a page. A file without the
``%%EOF`` marker is reported as truncated (pypdf would otherwise patch it up and return
part of the text silently). A PDF whose pages yield no text is most likely scanned
images: that is an error telling the user to run OCR first.

DOCX: body paragraphs and tables in document order, blank lines between; each table
row is one paragraph with its cells joined by `` | ``. Headers, footers, comments and
footnotes are not read.
"""

from __future__ import annotations

import io
import zipfile
import zlib

import docx
from docx.opc.exceptions import OpcError
from docx.table import Table, _Row
from lxml.etree import LxmlError
from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, PyPdfError

from kg.errors import SourceError
from kg.sources.document import Document
from kg.sources.raw import Raw

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# pypdf documents that "broken PDF files might cause other Exceptions" than its own
# PyPdfError: these are the ones malformed objects and streams raise in practice.
# They are caught only around pypdf calls, so they cannot hide a bug of ours.
_PDF_BROKEN: tuple[type[BaseException], ...] = (
    ValueError, KeyError, IndexError, TypeError, AttributeError, zlib.error, RecursionError,
)
_MAX_UNZIPPED = 512 * 1024 * 1024  # a .docx never needs more; guards against zip bombs


# -- PDF ---------------------------------------------------------------------------------

def _pdf_title(reader: PdfReader) -> str:
    try:
        meta = reader.metadata
    except (PyPdfError, *_PDF_BROKEN):
        return ""  # a broken info dictionary costs the title, not the text
    return str(meta.title).strip() if meta is not None and meta.title else ""


def parse_pdf(raw: Raw) -> Document:
    if not raw.data:
        raise SourceError(raw.where, "empty file (0 bytes); nothing to extract")
    if b"%PDF-" not in raw.data[:1024]:
        raise SourceError(raw.where, "not a PDF file (no %PDF- header at its start)")
    if raw.data.rfind(b"%%EOF") == -1:
        raise SourceError(raw.where, "truncated or corrupt PDF (no %%EOF end marker); "
                                     "download or copy the file again")
    try:
        reader = PdfReader(io.BytesIO(raw.data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise SourceError(raw.where, "encrypted PDF that needs a password; save an "
                                         "unencrypted copy")
        n_pages = len(reader.pages)
    except DependencyError as exc:
        raise SourceError(raw.where, f"cannot decrypt this PDF: {exc}") from exc
    except (PyPdfError, *_PDF_BROKEN) as exc:
        raise SourceError(raw.where, f"corrupt or truncated PDF: {exc}") from exc

    pages: list[str] = []
    for number in range(n_pages):
        try:
            page_text = reader.pages[number].extract_text() or ""
        except (PyPdfError, *_PDF_BROKEN) as exc:
            raise SourceError(raw.where, f"corrupt PDF: cannot read the text of page "
                                         f"{number + 1} of {n_pages}: {exc}") from exc
        pages.append(page_text.strip())

    text, starts = "", []
    for page_text in pages:
        if text and page_text:
            text += "\n\n"
        starts.append(len(text))
        text += page_text
    if not text.strip():
        raise SourceError(raw.where, f"no extractable text in {n_pages} page(s); it may be "
                                     "a scanned document: run OCR on it first (e.g. ocrmypdf)")
    return raw.document(text, title=_pdf_title(reader), pages=n_pages, page_starts=starts)


# -- DOCX --------------------------------------------------------------------------------

def _check_zip(raw: Raw) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(raw.data)) as zf:
            unzipped = sum(info.file_size for info in zf.infolist())
    except zipfile.BadZipFile as exc:
        raise SourceError(raw.where, f"corrupt or truncated .docx (not a valid zip "
                                     f"archive: {exc})") from exc
    if unzipped > _MAX_UNZIPPED:
        raise SourceError(raw.where, f"the .docx unpacks to {unzipped} bytes (over "
                                     f"{_MAX_UNZIPPED}); refusing to open it")


def _row_text(row: _Row) -> str:
    cells: list[str] = []
    seen: set[int] = set()
    for cell in row.cells:
        # A merged cell appears once per grid column it spans; read it once.
        if id(cell._tc) in seen:
            continue
        seen.add(id(cell._tc))
        text = " ".join(cell.text.split())
        if text:
            cells.append(text)
    return " | ".join(cells)


def parse_docx(raw: Raw) -> Document:
    if not raw.data:
        raise SourceError(raw.where, "empty file (0 bytes); nothing to extract")
    _check_zip(raw)
    try:
        word = docx.Document(io.BytesIO(raw.data))
        blocks: list[str] = []
        for item in word.iter_inner_content():
            if isinstance(item, Table):
                blocks.extend(t for t in (_row_text(r) for r in item.rows) if t)
            elif item.text.strip():
                blocks.append(item.text.strip())
        title = (word.core_properties.title or "").strip()
    except (zipfile.BadZipFile, OpcError, KeyError, ValueError, LxmlError) as exc:
        raise SourceError(raw.where, f"corrupt .docx or not a Word document: {exc}") from exc
    if not blocks:
        raise SourceError(raw.where, "no text in the document's paragraphs or tables")
    return raw.document("\n\n".join(blocks), title=title)
