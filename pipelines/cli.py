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
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from configs.settings import Settings, load_settings
from features.services import CHURN_SERVICE
from pipelines.errors import failure_message
from pipelines.report import print_where_to_look
from pipelines.runtime import DEBUG, apply_defaults

app = typer.Typer(no_args_is_help=True, help="Predictive customer-experience pipeline (CEM 4.0).")
console = Console()

@app.callback()
def _defaults(
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show the full traceback and library logs when a command fails.")] = False,
) -> None:
    apply_defaults(debug)


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _settings(data_dir: Path | None) -> Settings:
    settings = load_settings()
    return settings.model_copy(update={"data_dir": Path(data_dir).resolve()}) if data_dir else settings


def _run_steps(description: str, steps: int, flow, *args):
    """Run a flow whose tasks report finished steps through ``pipelines.progress``."""
    from pipelines import progress as hook

    _flows_may_start_a_server()
    with _progress() as progress:
        task = progress.add_task(description, total=steps)
        hook.install(advance=lambda: progress.advance(task))
        return flow(*args)


def _flows_may_start_a_server() -> None:
    """Prefect's temporary API server stops with `cem`, even a `cem` killed by SIGKILL."""
    from pipelines.prefect_server import guard_api_server

    guard_api_server()


def _date_option(name: str, value: str) -> None:
    """Stop with one line when a date option is not YYYY-MM-DD."""
    from datetime import date

    try:
        date.fromisoformat(value)
    except ValueError as err:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD", param_hint=name) from err


DataDir = Annotated[
    Path | None, typer.Option(help="Root of the data folders (default: CEM_DATA_DIR or ./data).")
]


@app.command()
def simulate(
    customers: Annotated[int | None, typer.Option(help="Customers ever in the CRM.")] = None,
    months: Annotated[int | None, typer.Option(help="Months of history.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same world).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Simulate the built-in world: source exports to data/raw, hidden truth to data/truth."""
    from pipelines import progress as hook
    from pipelines.cluster import cluster_client, on_cluster
    from pipelines.flows import simulate_flow

    settings = _settings(data_dir)
    overrides = {k: v for k, v in {"customers": customers, "months": months, "seed": seed}.items()
                 if v is not None}
    params = settings.simulate.model_copy(update=overrides)
    started = time.perf_counter()
    _flows_may_start_a_server()
    # cluster.address set: the chunks run on Dask workers; the line names the dashboard
    with (cluster_client(settings.cluster, announce=console.print, quiet=not DEBUG["on"]) as client,
          _progress() as progress):
        task = progress.add_task(f"simulating {params.customers:,} customers", total=None)
        hook.install(report=lambda i, n: progress.update(task, completed=i, total=n))
        written = on_cluster(simulate_flow, client)(params, settings.raw_dir, settings.truth_dir,
                                                    on_cluster=client is not None)
    console.print(f"[green]world written[/] in {time.perf_counter() - started:.1f}s: "
                  f"exports in {settings.raw_dir}, hidden truth in {settings.truth_dir}")
    for table, rows in written.items():
        console.print(f"  {table:<24} {rows:>12,} rows")


@app.command()
def ingest(
    source: Annotated[Path | None, typer.Option(help="Folder of source tables (CSV or Parquet).")] = None,
    mapping: Annotated[Path | None, typer.Option(
        help="Mapping file (configs/sources/*.yaml) of a company export in --source.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Validate the source tables, resolve identities, write clean tables and quarantine."""
    from features.ingest import SourceContractError
    from features.ingest.cluster import ingest_on
    from features.ingest.coverage import coverage_lines
    from pipelines import progress as hook
    from pipelines.cluster import cluster_client, scheduler_address
    from pipelines.flows import ingest_flow

    settings = _settings(data_dir)
    source = source or settings.raw_dir
    _flows_may_start_a_server()
    # cluster.address set: the tables are validated per partition on Dask workers
    with (cluster_client(settings.cluster, announce=console.print, quiet=not DEBUG["on"]) as client,
          ingest_on(scheduler_address(client)), _progress() as progress):
        task = progress.add_task("ingesting", total=9)
        hook.install(advance=lambda: progress.advance(task))
        try:
            report = ingest_flow(source, settings.clean_dir, settings.quarantine_dir,
                                 settings.ingest, mapping, settings.staged_dir)
        except SourceContractError as err:
            progress.stop()
            console.print("[red]ingest stopped:[/]", escape(str(err)), soft_wrap=True)
            raise typer.Exit(code=2) from err
    console.print(report.rich_table())
    rows_in = sum(t.rows_in for t in report.tables.values())
    kept = sum(t.rows_kept for t in report.tables.values())
    console.print(f"rows in = kept + quarantined in every table; in all: {rows_in:,} = {kept:,} "
                  f"+ {report.rows_quarantined:,}")
    console.print(f"clean tables in {settings.clean_dir}, quarantined rows in {settings.quarantine_dir}")
    if report.empty_tables:
        console.print(f"[yellow]empty tables (a header, no rows):[/] {', '.join(report.empty_tables)}")
    for line in coverage_lines(report.tables, report.missing_tables):
        console.print(line)


@app.command()
def features(
    as_of: Annotated[str | None, typer.Option(
        help="End of the observed history YYYY-MM-DD, exclusive (default: the month after the "
             "latest event). Set it to the export date when churn is recorded after the events.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Build the fused X+O feature tables, `feast apply` them and fill the online store."""
    from pipelines.cluster import cluster_client, scheduler_address
    from pipelines.flows import features_flow

    settings = _settings(data_dir)
    if as_of:
        _date_option("--as-of", as_of)
    # cluster.address set: the tables are built per customer bucket on Dask workers
    with cluster_client(settings.cluster, announce=console.print, quiet=not DEBUG["on"]) as client:
        result = _run_steps("building features", 3, features_flow, settings.data_dir, as_of,
                            scheduler_address(client))
    for table, rows in result["rows"].items():
        console.print(f"  {table:<24} {rows:>12,} rows")
    console.print(f"registered in Feast: {', '.join(result['registered'])}")
    console.print(f"feature tables in {settings.feature_dir}; registry and online store in "
                  f"{settings.feast_dir}")


@app.command()
def train(data_dir: DataDir = None) -> None:
    """Train the models, explain them, log and register them in MLflow."""
    from pipelines.cluster import cluster_client, scheduler_address
    from pipelines.flows import train_flow
    from pipelines.report import print_training

    settings = _settings(data_dir)
    # cluster.address set: the churn model's final boosters on lightgbm.dask (train.cluster_fit)
    with cluster_client(settings.cluster, announce=console.print, quiet=not DEBUG["on"]) as client:
        result = _run_steps("training models", 3, train_flow, settings.data_dir,
                            scheduler_address(client))
    print_training(console, result)
    console.print(f"MLflow tracking store: {settings.tracking_uri}  (open it with `make ui`)")


@app.command()
def score(
    as_of: Annotated[str | None, typer.Option(
        help="Scoring date YYYY-MM-DD (default: the latest feature snapshot).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Score every active customer with the champion models, plan next-best actions and
    write scores, tags and ranked action lists to the serving database."""
    from pipelines.cluster import cluster_client, scheduler_address
    from pipelines.flows import score_flow
    from pipelines.report import print_scoring

    settings = _settings(data_dir)
    # cluster.address set: scoring, candidates and reasons per customer bucket on Dask workers
    with cluster_client(settings.cluster, announce=console.print, quiet=not DEBUG["on"]) as client:
        result = _run_steps("scoring customers", 1, score_flow, settings.data_dir, as_of,
                            scheduler_address(client))
    print_scoring(console, result)


@app.command()
def cycle(
    months: Annotated[int, typer.Option(min=1, help="Months the built-in world lives on.")] = 1,
    data_dir: DataDir = None,
) -> None:
    """Close the loop on the built-in world: each month it answers the latest plan, then
    ingest, features, retrain on schedule and score plan the next month."""
    from pipelines.cluster import cluster_client, scheduler_address
    from pipelines.cycle import curve_dir, curve_line, cycle_line
    from pipelines.cycle_flow import cycle_flow

    settings = _settings(data_dir)
    _flows_may_start_a_server()
    # cluster.address set: the incremental ingest, features, churn fits and scoring on Dask
    # workers (one cluster for every month); the world's month stays in this process
    with cluster_client(settings.cluster, announce=console.print, quiet=not DEBUG["on"]) as client:
        for _ in range(months):
            line = cycle_flow(settings.data_dir, scheduler_address(client))
            console.print(cycle_line(line), soft_wrap=True)
            console.print(curve_line(line["curve"]), soft_wrap=True)
    console.print(f"learning curve (true values, from the hidden truth): "
                  f"{curve_dir(settings) / 'learning_curve.csv'}", soft_wrap=True)


@app.command()
def lookup(
    customer_id: Annotated[list[str], typer.Argument(help="One or more customer ids.")],
    service: Annotated[str, typer.Option(help="Feast FeatureService.")] = CHURN_SERVICE,
    data_dir: DataDir = None,
) -> None:
    """Print a customer's latest features from the online store."""
    from features.store import feature_store, online_features

    frame = online_features(feature_store(_settings(data_dir)), customer_id, service)
    console.print(frame.T.to_string())


@app.command()
def impact(
    mlflow_log: Annotated[bool, typer.Option(
        "--mlflow/--no-mlflow", help="Log the report to MLflow.")] = True,
    data_dir: DataDir = None,
) -> None:
    """Measure what the plans did from realized outcomes: treated vs hold-out churn per action
    and the comparison slices' value, per cycle and cumulative (saved for the manager's page)."""
    from models.impact import run_impact, serving_database_missing
    from models.impact.text import summary_lines

    settings = _settings(data_dir)
    missing = serving_database_missing(settings)
    if missing:
        console.print(f"[red]no impact report:[/] {escape(missing)}", soft_wrap=True)
        raise typer.Exit(code=2)
    done = run_impact(settings, log_to_mlflow=mlflow_log)
    for line in [*summary_lines(done.report), f"report: {done.path}"
                 + (f"; MLflow run {done.mlflow_run_id}" if done.mlflow_run_id else "")]:
        console.print(escape(line), soft_wrap=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    access_log: Annotated[bool, typer.Option(help="uvicorn access log (customer ids redacted).")] = True,
    data_dir: DataDir = None,
) -> None:
    """Start the scoring service and the reps' page (FastAPI under uvicorn)."""
    from pipelines.serve import run_server, tokens_path

    settings = _settings(data_dir)
    console.print(f"reps' page: http://{host}:{port}/login (tokens: `cem tokens`, {tokens_path(settings)}); "
                  f"API docs: http://{host}:{port}/docs")
    run_server(settings, host, port, access_log)


@app.command()
def tokens(
    expires_in: Annotated[float | None, typer.Option(
        "--expires-in", min=0, metavar="DAYS",
        help="Days the tokens stay valid (default: serving.token_days; 0: never expire).")] = None,
    rep: Annotated[str | None, typer.Option(
        help="Rotate only this rep's (or 'manager') token; the old one stops working.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Issue access tokens for the latest run's reps and a manager (earlier tokens stop working)."""
    from pipelines.report import tokens_line
    from pipelines.serve import issue_demo_tokens, token_days, token_expiry

    settings = _settings(data_dir)
    try:
        path, issued = issue_demo_tokens(settings, expires_in, rep)
    except (RuntimeError, LookupError) as err:
        console.print(f"[red]no tokens:[/] {escape(str(err))}")
        raise typer.Exit(code=2) from err
    console.print(tokens_line(path, issued, rep, token_expiry(token_days(settings, expires_in))))


@app.command()
def demo(
    cycles: Annotated[int, typer.Option(
        min=0, help="Months of the closed loop (`cem cycle`) after the first scoring run.")] = 2,
    data_dir: DataDir = None,
) -> None:
    """Run the whole pipeline on the built-in world, close the loop for a few months and say
    where to look."""
    settings = _settings(data_dir)
    simulate(data_dir=settings.data_dir)
    ingest(data_dir=settings.data_dir)
    features(data_dir=settings.data_dir)
    train(data_dir=settings.data_dir)
    score(data_dir=settings.data_dir)
    if cycles:
        console.rule(f"[bold]closed loop: {cycles} month{'s' if cycles > 1 else ''}")
        started = time.perf_counter()
        cycle(months=cycles, data_dir=settings.data_dir)
        console.print(f"closed loop: {time.perf_counter() - started:.0f} s")
    console.rule("[bold]where to look")
    print_where_to_look(console, settings)


def main(argv: list[str] | None = None) -> None:
    """The `cem` entry point: a failing command prints one or two lines and exits 2 (the
    traceback only with `--debug`)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        app(argv, prog_name="cem")
    except Exception as err:   # noqa: BLE001 - every failure gets the same short report
        if DEBUG["on"] or "--debug" in argv:
            raise
        command = next((a for a in argv if not a.startswith("-")), "")
        console.print(f"[red]cem {command} failed:[/] {failure_message(err)}", soft_wrap=True)
        console.print(f"(`cem --debug {' '.join(argv)}` shows the full traceback)", soft_wrap=True,
                      style="dim")
        sys.exit(2)
