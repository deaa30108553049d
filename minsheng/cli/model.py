"""`minsheng model …`: train and evaluate the ticket category classifier from a city's own history.

Mounted into the main CLI as ``minsheng model``; runnable alone with ``python -m typer minsheng.cli.model run``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(help="Train and evaluate the text classifier that suggests a category for each ticket.")

_err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _load_rows(
    files: list[Path], text_columns: list[str], label_column: str | None
) -> tuple[list[str], list[str]]:
    from minsheng.triage.datafile import DataFileError, read_table

    columns = list(dict.fromkeys([*text_columns, *([label_column] if label_column else [])]))
    texts: list[str] = []
    labels: list[str] = []
    for path in files:
        try:
            rows = read_table(path, columns)
        except DataFileError as exc:
            raise _fail(str(exc)) from None
        for row in rows:
            # Title and detail are joined with a newline so the title stays the start of the text.
            texts.append("\n".join(row[c] for c in text_columns if row[c]))
            labels.append(row[label_column].strip() if label_column else "")
    return texts, labels


def _print_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


@app.command()
def train(
    data: list[Path] = typer.Option(..., "--data", help="CSV or XLSX file; repeat to combine several."),
    text_column: list[str] = typer.Option(
        ..., "--text-column", help="Column holding request text; repeat to join several (title, detail)."
    ),
    label_column: str = typer.Option(..., "--label-column", help="Column holding the category."),
    out: Path = typer.Option(..., "--out", help="Directory to write the model to."),
    target_precision: float = typer.Option(
        0.97, "--target-precision", min=0.5, max=1.0, help="Precision wanted from auto-dispatch."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the cross-validation split."),
) -> None:
    """Train a classifier on labelled tickets and save it to a model directory; prints a JSON summary."""
    from minsheng.triage.classifier import save_model, train_classifier

    with _err.status("reading data…"):
        texts, labels = _load_rows(data, text_column, label_column)
    pairs = [(t, lab) for t, lab in zip(texts, labels, strict=True) if lab]
    skipped = len(texts) - len(pairs)
    if len({lab for _, lab in pairs}) < 2:
        raise _fail(
            f"need labelled rows of at least two categories in {label_column!r}; found {len(pairs)} rows"
        )
    _err.print(
        f"{len(pairs)} labelled texts from {len(data)} file(s); {skipped} rows without a label skipped"
    )
    started = time.perf_counter()
    with _err.status(f"training on {len(pairs)} texts…"):
        try:
            model = train_classifier(
                [t for t, _ in pairs], [lab for _, lab in pairs], target_precision=target_precision, seed=seed
            )
        except ValueError as exc:
            raise _fail(str(exc)) from None
    try:
        save_model(model, out)
    except OSError as exc:
        raise _fail(f"cannot write model to {out}: {exc}") from None
    metrics = model.metadata["metrics"]
    _err.print(f"[green]saved[/] {out} in {time.perf_counter() - started:.1f} s")
    _print_json(
        {
            "model": str(out),
            "n_train": model.metadata["n_train"],
            "skipped_rows": skipped,
            "labels": model.labels,
            "threshold": model.threshold,
            "cv_accuracy": metrics["accuracy"],
            "cv_macro_f1": metrics["macro_f1"],
            "auto_coverage": metrics["auto_coverage"],
            "auto_precision": metrics["auto_precision"],
            "train_seconds": model.metadata["train_seconds"],
        }
    )


@app.command()
def evaluate(
    model: Path = typer.Option(..., "--model", help="Model directory written by `train`."),
    data: list[Path] = typer.Option(..., "--data", help="CSV or XLSX file; repeat to combine several."),
    text_column: list[str] = typer.Option(..., "--text-column", help="Column(s) holding request text."),
    label_column: str = typer.Option(..., "--label-column", help="Column holding the true category."),
) -> None:
    """Evaluate a model on labelled tickets; prints one JSON object (accuracy, macro_f1, per_class, auto_*)."""
    from minsheng.triage.classifier import ModelLoadError, load_model
    from minsheng.triage.classifier import evaluate as run_evaluation

    try:
        classifier = load_model(model)
    except ModelLoadError as exc:
        raise _fail(str(exc)) from None
    texts, labels = _load_rows(data, text_column, label_column)
    pairs = [(t, lab) for t, lab in zip(texts, labels, strict=True) if lab]
    if not pairs:
        raise _fail(f"no labelled rows in column {label_column!r}")
    with _err.status(f"evaluating on {len(pairs)} texts…"):
        result = run_evaluation(classifier, [t for t, _ in pairs], [lab for _, lab in pairs])
    result["model"] = str(model)
    _print_json(result)
