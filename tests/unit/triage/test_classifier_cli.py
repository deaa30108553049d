"""`minsheng model train/evaluate` through Typer's CliRunner, on generated CSV and XLSX files."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from minsheng.cli.model import app

runner = CliRunner()
KEYS = {
    "accuracy",
    "macro_f1",
    "per_class",
    "auto_threshold",
    "auto_coverage",
    "auto_precision",
    "texts_per_second",
}


def _split(text: str) -> tuple[str, str]:
    return text[:8], text[8:]


@pytest.fixture()
def csv_file(tmp_path, make_corpus):
    texts, labels = make_corpus(25, seed=5)
    path = tmp_path / "history.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["title", "detail", "category"])
        for text, label in zip(texts, labels, strict=True):
            writer.writerow([*_split(text), label])
    return path


@pytest.fixture()
def xlsx_file(tmp_path, make_corpus):
    import openpyxl

    texts, labels = make_corpus(10, seed=6)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["title", "detail", "category"])
    for text, label in zip(texts, labels, strict=True):
        sheet.append([*_split(text), label])
    path = tmp_path / "more.xlsx"
    workbook.save(path)
    return path


def _json(output: str) -> dict:
    return json.loads(output[output.index("{") :])


def test_train_on_csv_and_xlsx_then_evaluate(tmp_path, csv_file, xlsx_file):
    out = tmp_path / "model"
    args = ["train", "--data", str(csv_file), "--data", str(xlsx_file), "--text-column", "title"]
    args += ["--text-column", "detail", "--label-column", "category", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = _json(result.stdout)
    assert summary["n_train"] == 4 * 25 + 4 * 10
    assert len(summary["labels"]) == 4
    assert (out / "meta.json").is_file()

    args = ["evaluate", "--model", str(out), "--data", str(xlsx_file), "--text-column", "title"]
    args += ["--text-column", "detail", "--label-column", "category"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = _json(result.stdout)
    assert report.keys() >= KEYS
    assert report["n"] == 4 * 10


def test_missing_file_exits_2(tmp_path):
    args = ["train", "--data", str(tmp_path / "none.csv"), "--text-column", "t", "--label-column", "c"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_missing_column_exits_2(tmp_path, csv_file):
    args = ["train", "--data", str(csv_file), "--text-column", "正文", "--label-column", "category"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "正文" in result.output


def test_bad_model_dir_exits_2(tmp_path, csv_file):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "meta.json").write_text("{}", encoding="utf-8")
    args = ["evaluate", "--model", str(bad), "--data", str(csv_file), "--text-column", "title"]
    result = runner.invoke(app, [*args, "--label-column", "category"])
    assert result.exit_code == 2
    assert "model" in result.output.lower()
    assert "Traceback" not in result.output
