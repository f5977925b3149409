"""Bytes to text: plain text, Markdown, HTML (main text only) and PDF.

The format is decided by content, not only by name: a `.txt` holding binary data is
refused, a PDF is recognised by its signature. Every refusal is an `IngestError` whose
reason a person can act on ("encrypted PDF", "binary data, not text", "empty").
"""

from __future__ import annotations

import io
import re
import unicodedata
from pathlib import Path, PurePosixPath

from bs4 import BeautifulSoup
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from storage.documents.errors import EmptyDocument, UnsupportedContent
from storage.documents.models import SourceDocument

TEXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
PDF = "application/pdf"

# What a folder walk picks up, and what each name means when the content agrees.
SUFFIX_TYPES = {
    ".txt": TEXT,
    ".text": TEXT,
    ".rst": TEXT,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": HTML,
    ".htm": HTML,
    ".pdf": PDF,
}
# Content types a URL may answer with, and what they are parsed as.
CONTENT_TYPES = {
    "text/plain": TEXT,
    "text/markdown": MARKDOWN,
    "text/x-markdown": MARKDOWN,
    "text/html": HTML,
    "application/xhtml+xml": HTML,
    "application/pdf": PDF,
}
# Elements that are page furniture rather than the page's text.
_NOT_MAIN = ("script", "style", "noscript", "template", "svg", "nav", "header", "footer",
             "aside", "form", "iframe", "button")  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def normalise(text: str) -> str:
    """NFC, no trailing spaces, at most one blank line in a row: stable text to hash."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def detect_type(data: bytes, name: str, content_type: str | None = None) -> str:
    """The media type to parse `data` as, from its signature, declared type and name."""
    head = data[:1024].lstrip()
    if head.startswith(b"%PDF-"):
        return PDF
    declared = CONTENT_TYPES.get((content_type or "").split(";")[0].strip().lower())
    by_name = SUFFIX_TYPES.get(PurePosixPath(name).suffix.lower())
    if PDF in (declared, by_name):
        # Named or served as a PDF but without the signature: not something pypdf can read.
        raise UnsupportedContent(name, "malformed PDF (no %PDF- signature)")
    if declared == HTML or by_name == HTML:
        return HTML
    lowered = head[:200].lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return HTML
    return declared or by_name or TEXT


def parse(
    data: bytes, *, source: str, name: str, content_type: str | None = None
) -> SourceDocument:
    """Extract the text of one source; `name` gives a fallback title and the suffix."""
    if not data.strip():
        raise EmptyDocument(source, "empty: there is no text to add")
    media_type = detect_type(data, name, content_type)
    fallback = PurePosixPath(name).stem or name
    if media_type == PDF:
        return _parse_pdf(data, source, fallback)
    if media_type == HTML:
        return _parse_html(data, source, fallback, _charset(content_type))
    text = _decode_text(data, source, _charset(content_type))
    title = fallback
    if media_type == MARKDOWN:
        heading = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
        title = heading.group(1).strip() if heading else fallback
    return _document(title, source, media_type, text)


def parse_file(path: Path) -> SourceDocument:
    return parse(path.read_bytes(), source=str(path), name=path.name)


def _charset(content_type: str | None) -> str | None:
    match = re.search(r"charset=\"?([\w.:-]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


def _decode_text(data: bytes, source: str, charset: str | None) -> str:
    if b"\x00" in data:
        raise UnsupportedContent(source, "binary data, not text")
    try:
        text = data.decode(charset or "utf-8-sig")
    except (UnicodeDecodeError, LookupError):
        raise UnsupportedContent(
            source, f"not {charset or 'UTF-8'} text (binary, or another encoding)"
        ) from None
    if len(_CONTROL.findall(text)) > max(4, len(text) // 100):
        raise UnsupportedContent(source, "binary data, not text (control characters)")
    return text


def _document(
    title: str, source: str, media_type: str, text: str, page_starts: tuple[int, ...] = ()
) -> SourceDocument:
    # PDF text is built from normalised pages already; normalising again would move the
    # page offsets.
    text = text if page_starts else normalise(text)
    if not text:
        raise EmptyDocument(source, "empty: there is no text to add")
    title = " ".join(title.split())[:300] or "untitled"
    return SourceDocument(title, source, media_type, text, page_starts)


def _parse_html(data: bytes, source: str, fallback: str, charset: str | None) -> SourceDocument:
    soup = BeautifulSoup(data, "html.parser", from_encoding=charset)
    named = soup.find("title") or soup.find("h1")
    title = named.get_text(" ", strip=True) if named is not None else ""
    for tag in soup(_NOT_MAIN):
        tag.decompose()
    main = soup.find("main") or soup.find("article") or soup.find(None, {"role": "main"})
    root = main or soup.body or soup
    # Block boundaries become line breaks; normalise() then folds the blank runs.
    text = root.get_text("\n", strip=True)
    return _document(title or fallback, source, HTML, text)


def _parse_pdf(data: bytes, source: str, fallback: str) -> SourceDocument:
    try:
        reader = PdfReader(io.BytesIO(data))
        # An empty user password opens PDFs that are only protected against editing.
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnsupportedContent(
                source, "encrypted PDF: it needs a password; add a copy without one"
            )
        pages = [normalise(page.extract_text() or "") for page in reader.pages]
        title = str(reader.metadata.title) if reader.metadata and reader.metadata.title else ""
    except UnsupportedContent:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise UnsupportedContent(source, f"malformed PDF ({exc})") from exc
    parts: list[str] = []
    starts: list[int] = []
    offset = 0
    for page in pages:
        # An empty page starts where the next text does, so offsets map to real pages.
        starts.append(offset)
        if page:
            parts.append(page)
            offset += len(page) + 2
    text = "\n\n".join(parts)
    if not text:
        raise UnsupportedContent(
            source, "the PDF has no extractable text (scanned pages need OCR first)"
        )
    if not title:
        first_line = text.strip().split("\n", 1)[0]
        title = first_line if 0 < len(first_line) <= 120 else fallback
    return _document(title, source, PDF, text, tuple(starts))
