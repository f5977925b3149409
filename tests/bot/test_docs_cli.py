"""`python -m bot docs add/list/remove` through `run_docs`, on the real PostgreSQL."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

import pytest

from bot.config import Settings
from bot.docs.cli import DEFAULT_SCOPE, add_docs_parser, run_docs


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot")
    add_docs_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(_env_file=None, database_url=database_url, data_dir=tmp_path / "data")  # type: ignore[call-arg]


def test_the_default_scope_is_the_terminals_community() -> None:
    assert DEFAULT_SCOPE == "terminal:local"
    assert parse("docs", "list").scope == "terminal:local"
    args = parse("docs", "summarize", "12", "--points", "3", "--language", "German")
    assert (args.target, args.points, args.language) == ("12", 3, "German")


def test_a_bad_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse("docs", "remove", "abc")
    assert exited.value.code == 2
    assert "invalid int value: 'abc'" in capsys.readouterr().err


async def test_add_a_folder_list_and_remove(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scope = f"test:{uuid.uuid4().hex}"
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "rules.md").write_text("# House rules\n\nNo dogs in the club house.")
    (folder / "hours.txt").write_text("Open at nine on Saturdays.")
    (folder / "broken.pdf").write_bytes(b"not a pdf at all")

    status = await run_docs(settings, parse("docs", "add", str(folder), "--scope", scope))
    out, err = capsys.readouterr()
    assert status == 1  # one of three failed
    assert "added #" in out and "'House rules' (1 passages)" in out
    assert "2 of 3 added or already there" in out
    assert "broken.pdf: malformed PDF" in err

    status = await run_docs(
        settings, parse("docs", "add", str(folder / "rules.md"), "--scope", scope)
    )
    assert status == 0
    assert "already added" in capsys.readouterr().out

    assert await run_docs(settings, parse("docs", "list", "--scope", scope)) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 2
    first_id = listing[0].split()[0].lstrip("#")
    assert "House rules" in listing[0] or "hours" in listing[0]

    assert await run_docs(settings, parse("docs", "remove", first_id, "--scope", scope)) == 0
    assert f"removed #{first_id}" in capsys.readouterr().out
    assert await run_docs(settings, parse("docs", "remove", first_id, "--scope", scope)) == 1
    assert f"there is no document #{first_id} here" in capsys.readouterr().err
    assert await run_docs(settings, parse("docs", "list", "--scope", scope)) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


async def test_refused_url_and_empty_folder_are_reported(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scope = f"test:{uuid.uuid4().hex}"
    status = await run_docs(
        settings, parse("docs", "add", "http://169.254.169.254/latest/", "--scope", scope)
    )
    assert status == 1
    assert "169.254.169.254 is a cloud metadata address" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert await run_docs(settings, parse("docs", "add", str(tmp_path / "empty"))) == 1
    assert "no documents found there" in capsys.readouterr().err
    assert await run_docs(settings, parse("docs", "list", "--scope", scope)) == 0
    assert "no documents in" in capsys.readouterr().out
