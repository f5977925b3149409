"""Ingestion of each format from files the tests write, and the refusals of bad input.

Every refusal must name its reason and leave nothing behind in the store.
"""

from __future__ import annotations

import io
import itertools
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool
from pypdf import PdfReader, PdfWriter

from storage.documents import (
    EmptyDocument,
    IngestError,
    Ingestor,
    MiniLMEmbedder,
    PgDocumentStore,
    TooLarge,
    UnsupportedContent,
    expand_sources,
)
from storage.documents.chunking import chunk_text
from storage.documents.parsing import parse


def make_pdf(pages: list[str], title: str = "") -> bytes:
    """A real PDF with one line of Helvetica text per page, offsets computed exactly."""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # pages, filled below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    for text in pages:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids),
        len(kids),
    )
    info = None
    if title:
        objects.append(b"<< /Title (%s) >>" % title.encode("latin-1"))
        info = len(objects)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objects) + 1)
    if info:
        trailer += b" /Info %d 0 R" % info
    out.write(b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def encrypted(pdf: bytes, password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=password, owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def store(pg_pool: AsyncConnectionPool, embedder: MiniLMEmbedder) -> PgDocumentStore:
    return PgDocumentStore(pg_pool, embedder)


@pytest.fixture
def scope() -> str:
    return f"test:{uuid.uuid4().hex}"


# --- formats ---------------------------------------------------------------------------


def test_plain_text_takes_the_file_name_as_title(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("Line one.\r\n\r\n\r\n\r\nLine two.   \n")
    document = parse((tmp_path / "notes.txt").read_bytes(), source="notes.txt", name="notes.txt")
    assert (document.title, document.media_type) == ("notes", "text/plain")
    assert document.text == "Line one.\n\nLine two."


def test_markdown_takes_its_first_heading_as_title() -> None:
    data = b"Intro line\n\n# Getting started\n\nInstall it.\n\n## Details\n"
    document = parse(data, source="guide.md", name="guide.md")
    assert (document.title, document.media_type) == ("Getting started", "text/markdown")
    assert "Install it." in document.text


def test_html_keeps_the_main_text_only() -> None:
    page = b"""<!doctype html><html><head><title>Club FAQ</title>
    <style>body { color: red }</style><script>var tracking = 1;</script></head>
    <body><nav>Home | About | Login</nav><header>Site banner</header>
    <main><h1>FAQ</h1><p>Meetings are on <b>Tuesdays</b>.</p><p>Bring a friend.</p></main>
    <footer>Copyright 2026</footer></body></html>"""
    document = parse(page, source="faq.html", name="faq.html")
    assert document.title == "Club FAQ"
    assert document.media_type == "text/html"
    assert "Meetings are on\nTuesdays\n." in document.text
    assert "Bring a friend." in document.text
    for furniture in ("tracking", "color", "Login", "banner", "Copyright"):
        assert furniture not in document.text


def test_pdf_text_title_and_pages() -> None:
    pdf = make_pdf(["First page about pumps.", "", "Third page about valves."], "Plant manual")
    document = parse(pdf, source="manual.pdf", name="manual.pdf")
    assert (document.title, document.media_type) == ("Plant manual", "application/pdf")
    assert "First page about pumps." in document.text
    assert "Third page about valves." in document.text
    third = document.text.index("Third")
    assert document.page_starts[2] == third  # the empty second page maps nowhere


def test_pdf_protected_only_against_editing_is_read() -> None:
    pdf = encrypted(make_pdf(["Readable without a password."]), password="")
    assert "Readable" in parse(pdf, source="open.pdf", name="open.pdf").text


PNG_TAIL = bytes(range(99))


@pytest.mark.parametrize(
    ("name", "data", "error", "reason"),
    [
        ("secret.pdf", encrypted(make_pdf(["Hi."]), "pw"), UnsupportedContent, "encrypted PDF"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", UnsupportedContent, "malformed PDF"),
        ("fake.pdf", b"just text pretending", UnsupportedContent, "no %PDF- signature"),
        ("image.pdf", make_pdf([""]), UnsupportedContent, "no extractable text"),
        ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\rIHDR" + PNG_TAIL, UnsupportedContent, "binary"),
        ("latin1.txt", "Café crème".encode("latin-1"), UnsupportedContent, "not UTF-8 text"),
        ("empty.txt", b"", EmptyDocument, "empty"),
        ("blank.md", b"  \n\n\t \n", EmptyDocument, "empty"),
        ("empty.html", b"<html><body><script>x()</script></body></html>", EmptyDocument, "empty"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_its_reason(
    name: str, data: bytes, error: type[IngestError], reason: str
) -> None:
    with pytest.raises(error, match=reason) as caught:
        parse(data, source=name, name=name)
    assert caught.value.source == name


# --- files, folders and the store -----------------------------------------------------


async def test_a_folder_is_ingested_and_bad_files_leave_nothing(
    tmp_path: Path, store: PgDocumentStore, scope: str
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a.md").write_text("# Alpha\n\nThe alpha team meets on Mondays.")
    (tmp_path / "sub" / "b.html").write_text("<title>Beta</title><p>Beta ships on Fridays.</p>")
    (tmp_path / "sub" / "c.pdf").write_bytes(make_pdf(["Gamma is the third letter."]))
    (tmp_path / "sub" / "d.txt").write_bytes(b"\x00\x01binary")
    (tmp_path / "e.png").write_bytes(b"\x89PNG")  # not a document type: not picked up
    (tmp_path / ".hidden" / "f.txt").write_text("hidden")
    sources = expand_sources([str(tmp_path)])
    assert [Path(source).name for source in sources] == ["a.md", "b.html", "c.pdf", "d.txt"]
    ingestor = Ingestor(store)
    added, failed = [], []
    for source in sources:
        try:
            added.append(await ingestor.add(scope, source))
        except IngestError as exc:
            failed.append(exc)
    assert [result.document.title for result in added] == [
        "Alpha",
        "Beta",
        "Gamma is the third letter.",
    ]
    assert [Path(exc.source).name for exc in failed] == ["d.txt"]
    assert len(await store.list_documents(scope)) == 3
    [best, *_] = await store.search(scope, "When does the beta ship?", k=1)
    assert best.title == "Beta"


async def test_missing_large_and_special_files_are_refused(
    tmp_path: Path, store: PgDocumentStore, scope: str
) -> None:
    ingestor = Ingestor(store, max_file_bytes=1000)
    big = tmp_path / "big.txt"
    big.write_text("word " * 400)  # 2000 bytes: over this ingestor's cap
    with pytest.raises(TooLarge, match="over the 1000 byte cap"):
        await ingestor.add(scope, str(big))
    with pytest.raises(IngestError, match="no such file"):
        await ingestor.add(scope, str(tmp_path / "missing.txt"))
    with pytest.raises(UnsupportedContent, match="not a regular file"):
        await ingestor.add(scope, "/dev/null")
    assert await store.list_documents(scope) == []


async def test_a_failure_while_storing_leaves_nothing_half_done(
    store: PgDocumentStore, scope: str, pg_pool: AsyncConnectionPool
) -> None:
    """One transaction per document: a chunk that the database rejects undoes the row."""
    from storage.documents import SourceDocument

    bad = SourceDocument("Bad", "bad.txt", "text/plain", "Valid text.\n\nMore text\x00 with a NUL.")
    with pytest.raises(IngestError, match="the database refused its text"):
        await store.add(scope, bad)
    assert await store.list_documents(scope) == []
    async with pg_pool.connection() as conn:
        row = await (
            await conn.execute("SELECT count(*) FROM document_chunks WHERE scope = %s", (scope,))
        ).fetchone()
    assert row == (0,)


# --- chunking ------------------------------------------------------------------------

words = st.text(alphabet="abcdefghij", min_size=1, max_size=30)
separators = st.sampled_from([" ", "  ", "\n", "\n\n", ". ", "! ", "\n\n\n"])
texts = st.lists(st.tuples(words, separators), min_size=1, max_size=200).map(
    lambda parts: "".join(word + sep for word, sep in parts)
)


@settings(max_examples=200, deadline=None)
@given(text=texts, size=st.integers(20, 300), overlap_share=st.floats(0, 0.5))
def test_chunks_cover_the_text_in_whole_words(text: str, size: int, overlap_share: float) -> None:
    overlap = int(size * overlap_share)
    chunks = chunk_text(text, size, overlap)
    original_words = text.split()
    for chunk in chunks:
        assert text[chunk.start : chunk.start + len(chunk.text)] == chunk.text
        assert len(chunk.text) <= size or len(chunk.text.split()) == 1
        # Whole words only: the characters either side of the chunk are not letters.
        before = text[chunk.start - 1] if chunk.start else " "
        after_index = chunk.start + len(chunk.text)
        after = text[after_index] if after_index < len(text) else " "
        assert before.isspace() or not before.isalpha() or not chunk.text[0].isalpha()
        assert after.isspace() or not after.isalpha()
    # Every word is in some chunk, in order; starts never go backwards.
    assert [chunk.start for chunk in chunks] == sorted(chunk.start for chunk in chunks)
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.start + len(chunk.text)))
    assert all(index in covered for index, char in enumerate(text) if not char.isspace()), (
        original_words
    )


def test_neighbouring_chunks_overlap_by_whole_pieces() -> None:
    text = " ".join(f"Sentence number {n} ends here." for n in range(40))
    chunks = chunk_text(text, 200, 60)
    assert len(chunks) > 3
    for first, second in itertools.pairwise(chunks):
        shared = first.start + len(first.text) - second.start
        assert 0 < shared <= 60
        assert second.text.startswith("Sentence")


def test_a_word_longer_than_the_chunk_is_kept_whole() -> None:
    long_word = "x" * 50
    chunks = chunk_text(f"short words {long_word} and more", 20, 5)
    assert long_word in [chunk.text for chunk in chunks]
