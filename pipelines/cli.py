"""The `cem` command line: one command per pipeline step, plus `cem demo`.

Commands only parse options, call the step functions and print through Rich.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from configs.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, help="Predictive customer-experience pipeline (CEM 4.0).")
console = Console()


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _settings(data_dir: Path | None) -> Settings:
    settings = load_settings()
    return settings.model_copy(update={"data_dir": data_dir}) if data_dir else settings


DataDir = Annotated[Path | None, typer.Option(help="Root of the data folders (default: CEM_DATA_DIR or ./data).")]


@app.command()
def simulate(
    customers: Annotated[int | None, typer.Option(help="Customers ever in the CRM.")] = None,
    months: Annotated[int | None, typer.Option(help="Months of history.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same world).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Simulate the built-in world: source exports to data/raw, hidden truth to data/truth."""
    from features.world import simulate_world

    settings = _settings(data_dir)
    overrides = {k: v for k, v in {"customers": customers, "months": months, "seed": seed}.items()
                 if v is not None}
    params = settings.simulate.model_copy(update=overrides)
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"simulating {params.customers:,} customers", total=None)
        summary = simulate_world(params, settings.raw_dir, settings.truth_dir,
                                 on_progress=lambda i, n: progress.update(task, completed=i, total=n))
    console.print(f"[green]world written[/] in {time.perf_counter() - started:.1f}s: "
                  f"exports in {settings.raw_dir}, hidden truth in {settings.truth_dir}")
    for table, rows in summary.rows.items():
        console.print(f"  {table:<24} {rows:>12,} rows")


@app.command()
def ingest(
    source: Annotated[Path | None, typer.Option(help="Folder of source tables (CSV or Parquet).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Validate the source tables, resolve identities, write clean tables and quarantine."""
    from features.ingest import SourceContractError, run_ingest

    settings = _settings(data_dir)
    source = source or settings.raw_dir
    with _progress() as progress:
        task = progress.add_task("ingesting", total=9)
        try:
            report = run_ingest(source, settings.clean_dir, settings.quarantine_dir,
                                settings.ingest, on_table=lambda name: progress.advance(task))
        except SourceContractError as err:
            progress.stop()
            console.print(f"[red]ingest stopped:[/] {err}")
            raise typer.Exit(code=2) from err
    console.print(report.to_rich())
    console.print(f"identity match rate: {report.identity_match_rate:.2%}")
    console.print(f"clean tables in {settings.clean_dir}, quarantined rows in {settings.quarantine_dir}")


@app.command()
def demo(data_dir: DataDir = None) -> None:
    """Run the whole pipeline on the built-in world and say where to look."""
    settings = _settings(data_dir)
    simulate(data_dir=settings.data_dir)
    ingest(data_dir=settings.data_dir)
    console.rule("[bold]where to look")
    console.print(f"source exports:   {settings.raw_dir}")
    console.print(f"hidden truth:     {settings.truth_dir} (evaluation code only)")
    console.print(f"clean tables:     {settings.clean_dir}  (report: ingest_report.json)")
    console.print(f"quarantine:       {settings.quarantine_dir}")


def main() -> None:  # pragma: no cover - console entry point
    app(sys.argv[1:])
