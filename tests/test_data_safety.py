"""Issue 40: no command destroys a user's data, and every file problem is a message or an
error row. Each case runs through the command line, as a user would type it."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from classifier.cli import app
from classifier.io import outputs
from classifier.model.network import ThreadguardModel

runner = CliRunner()


def _jsonl(path: Path, n: int = 1500) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            row = {"thread_id": f"t{i // 10}", "comment_id": str(i), "text": f"comment {i}"}
            fh.write(json.dumps(row) + "\n")
    return path


def _parse(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["parse", *args])
    return result.exit_code, result.stdout, result.stderr


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".part", ".lock")))


@pytest.mark.parametrize("flag", ["-o", "--errors"])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(
    tmp_path: Path, flag: str
) -> None:
    source = _jsonl(tmp_path / "in.jsonl")
    before = source.read_bytes()
    code, _, err = _parse(str(source), flag, str(source))
    assert code == 2
    assert f"refusing to write {source}: it is the input {source}" in err
    assert len(err.strip().splitlines()) == 1
    assert source.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_score_refuses_its_input_as_output_before_loading_a_model(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", 20)
    before = source.read_bytes()
    result = runner.invoke(
        app, ["score", str(source), "--model", str(tmp_path / "none"), "-o", str(source)]
    )
    assert result.exit_code == 2, result.output
    assert "refusing to write" in result.stderr
    assert source.read_bytes() == before


def test_an_output_inside_an_input_folder_is_refused(tmp_path: Path) -> None:
    _jsonl(tmp_path / "in.jsonl", 10)
    code, _, err = _parse(str(tmp_path), "-o", str(tmp_path / "out.jsonl"))
    assert code == 2
    assert "inside the input folder" in err
    assert not (tmp_path / "out.jsonl").exists()


def test_a_second_writer_of_one_output_is_refused(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", 10)
    out = tmp_path / "out.jsonl"
    out.write_text("the first run's output\n")
    with outputs.output_file(out) as part:  # another run holds the output
        part.write_text("rows of the first run\n")
        code, _, err = _parse(str(source), "-o", str(out))
        assert code == 2
        assert "another run is writing it" in err
    assert out.read_text() == "rows of the first run\n"
    assert _leftovers(tmp_path) == []
    code, _, _ = _parse(str(source), "-o", str(out))  # free again once the first run ended
    assert code == 0 and out.read_text().count("\n") == 1


def test_a_write_failure_is_one_line_and_keeps_the_old_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _jsonl(tmp_path / "in.jsonl", 50)
    out = tmp_path / "out.jsonl"
    out.write_text("yesterday's rows\n")
    real_init = outputs.GuardedText.__init__

    def on_a_full_disk(self: outputs.GuardedText, fh: object, name: str) -> None:
        real_init(self, _FullDisk(fh), name)  # type: ignore[arg-type]

    monkeypatch.setattr(outputs.GuardedText, "__init__", on_a_full_disk)
    code, _, err = _parse(str(source), "-o", str(out))
    assert code == 2
    assert err.strip() == f"error: cannot write {out}: No space left on device"
    assert out.read_text() == "yesterday's rows\n"
    assert _leftovers(tmp_path) == []
    assert source.read_text().count("\n") == 50


class _FullDisk:
    """A file whose third write finds the disk full."""

    def __init__(self, fh: object) -> None:
        self.fh = fh
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        if self.writes > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.fh.write(text)  # type: ignore[attr-defined, no-any-return]

    def flush(self) -> None:
        self.fh.flush()  # type: ignore[attr-defined]


def test_a_missing_output_folder_is_one_line(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", 5)
    code, _, err = _parse(str(source), "-o", str(tmp_path / "no" / "such" / "out.jsonl"))
    assert code == 2
    assert err.strip().endswith("No such file or directory")
    assert len(err.strip().splitlines()) == 1


def test_parquet_with_no_rows_is_a_valid_empty_file(tmp_path: Path) -> None:
    source = tmp_path / "empty.jsonl"
    source.write_text("")
    out = tmp_path / "out.parquet"
    code, _, _ = _parse(str(source), "-f", "parquet", "-o", str(out))
    assert code == 0
    assert pq.read_table(out).num_rows == 0


def test_score_parquet_with_no_rows_is_a_valid_empty_file(
    tiny_model: ThreadguardModel, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    tiny_model.save_pretrained(model)
    source = tmp_path / "empty.jsonl"
    source.write_text("")
    out = tmp_path / "scores.parquet"
    result = runner.invoke(
        app, ["score", str(source), "--model", str(model), "-f", "parquet", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 0 and "comment_id" in table.column_names


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_the_csv_delimiter_is_detected(tmp_path: Path, sep: str) -> None:
    source = tmp_path / "export.csv"
    lines = [sep.join(["thread_id", "comment_id", "text"])]
    lines += [sep.join([f"t{i // 10}", str(i), f'"hello, world {i}"']) for i in range(1000)]
    source.write_text("\n".join(lines) + "\n")
    code, out, err = _parse(str(source))
    assert code == 0, err
    assert "100 threads, 1000 comments, 0 errors" in err
    assert '"text": "hello, world 7"' in out


def test_delimiter_option_and_a_file_without_a_text_column(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    source.write_text("thread_id;comment_id;text\nt1;1;hello\n")
    code, _, err = _parse(str(source), "--delimiter", ",")
    assert code == 1
    assert "no column holds the comment text" in err
    assert "['thread_id;comment_id;text']" in err and "--delimiter" in err
    code, _, err = _parse(str(source), "--delimiter", ";")
    assert code == 0 and "1 comments" in err


def test_a_csv_with_only_a_header_says_so(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    source.write_text("thread_id,comment_id,text\n")
    code, _, err = _parse(str(source))
    assert code == 1
    assert "only a header, with the columns ['thread_id', 'comment_id', 'text']" in err


def test_an_unreadable_folder_is_an_error_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    (data / "locked").mkdir(parents=True)
    _jsonl(data / "ok.jsonl", 10)
    _jsonl(data / "locked" / "hidden.jsonl", 10)
    real = os.scandir

    def scandir(path: object = ".") -> object:
        if str(path).endswith("locked"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    code, _, err = _parse(str(data))
    assert code == 1
    assert f"error: {data / 'locked'}:folder: cannot read folder: Permission denied" in err
    assert "10 comments, 1 errors" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_a_file_in_a_folder_that_cannot_be_entered_is_an_error_row(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    _jsonl(locked / "in.jsonl", 3)
    locked.chmod(0)
    try:
        code, _, err = _parse(str(locked / "in.jsonl"))
    finally:
        locked.chmod(0o755)
    assert code == 1 and "cannot read file: Permission denied" in err


def test_an_over_long_line_is_an_error_row_and_reading_goes_on(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    big = json.dumps({"thread_id": "t", "comment_id": "big", "text": "x" * 2_000_000})
    small = json.dumps({"thread_id": "t", "comment_id": "1", "text": "fine"})
    source.write_text(f"{small}\n{big}\n{small.replace('1', '2')}\n")
    code, _, err = _parse(str(source), "--max-line-bytes", "1048576")
    assert code == 1
    assert "line 2: the line is longer than the limit of 1048576" in err
    assert "2 comments, 1 errors" in err


def test_a_file_with_no_line_end_is_given_up_in_bounded_memory(tmp_path: Path) -> None:
    """/dev/zero read as JSONL grew to 21.7 GB before: now one error row, then the next file."""
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    ok = _jsonl(tmp_path / "ok.jsonl", 3)
    code, _, err = _parse(
        "/dev/zero", str(ok), "--input-format", "jsonl", "--max-line-bytes", "1048576"
    )
    assert code == 1
    assert "/dev/zero:line 1: the line is longer than the limit" in err
    assert "the rest of the file was not read" in err
    assert "3 comments, 1 errors" in err


def test_an_over_long_csv_record_is_an_error_row(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(f"comment_id,text\n1,fine\n2,{'y' * 1_100_000}\n3,also fine\n")
    code, _, err = _parse(str(source), "--max-line-bytes", "1048576")
    assert code == 1
    assert "row 2 (line 3)" in err and "longer than the limit" in err
    assert "2 comments, 1 errors" in err
