"""A failing `cem` command says what went wrong in one or two lines and exits 2; the
traceback appears only with `--debug`."""

from __future__ import annotations

import pytest

from pipelines.cli import main
from pipelines.errors import failure_message


def test_a_failing_command_prints_two_lines_and_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["lookup", "C1", "--data-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    out = capsys.readouterr()
    text = (out.out + out.err).strip().splitlines()
    assert len(text) <= 2, text
    assert text[0].startswith("cem lookup failed:") and "churn_v1" in text[0]
    assert "--debug" in text[-1] and "Traceback" not in out.out + out.err


def test_debug_shows_the_original_exception(tmp_path):
    with pytest.raises(Exception, match="churn_v1"):
        main(["--debug", "lookup", "C1", "--data-dir", str(tmp_path)])


def test_a_bad_date_option_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["features", "--as-of", "2024-13-01", "--data-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    out = capsys.readouterr()
    assert "--as-of" in out.err + out.out and "2024-13-01" in out.err + out.out


@pytest.mark.parametrize("err, expected", [
    (FileNotFoundError(2, "No such file", "/d/clean/orders.parquet"),
     "file not found: /d/clean/orders.parquet (run `cem ingest` first)"),
    (FileNotFoundError(2, "No such file", "/d/features/churn_labels.parquet"),
     "file not found: /d/features/churn_labels.parquet (run `cem features` first)"),
    (KeyError("company_nps"), "missing key or column 'company_nps'"),
    (ValueError("a single class\nmore"), "a single class"),
    (TypeError("bad operand"), "TypeError: bad operand"),
])
def test_failure_messages_name_the_file_or_column(err, expected):
    assert failure_message(err) == expected
