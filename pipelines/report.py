"""Rich rendering of step results for the `cem` command line."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

CHURN_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "lift_top_decile",
                 "capture_top_decile")


def churn_table(churn: dict) -> Table:
    scheme = churn.get("validation", {"kind": "out_of_time"})
    title = ("out-of-time validation" if scheme["kind"] == "out_of_time"
             else f"customer-grouped {scheme['folds']}-fold cross-validation")
    table = Table(title=f"churn model, {title}")
    table.add_column("metric")
    table.add_column("LightGBM (calibrated)", justify="right")
    table.add_column("logistic baseline", justify="right")
    for name in CHURN_METRICS:
        table.add_row(name, f"{churn['lightgbm'][name]:.3f}", f"{churn['baseline'][name]:.3f}")
    return table


def nps_table(nps: dict) -> Table:
    wave = nps.get("latest_wave", "latest relationship wave")
    label = "mean CSAT" if nps.get("satisfaction_scale") == "csat" else "NPS"
    table = Table(title=f"company {label}, {wave} (counts every invitee)")
    for col in ("estimate", label):
        table.add_column(col, justify="right" if col == label else "left")
    for label, value in nps.get("headline", {}).items():
        table.add_row(label, value if isinstance(value, str) else f"{value:.1f}")
    return table


def period_table(nps: dict) -> Table:
    """The company figure per period: transactional surveys only, no relationship waves."""
    name = nps.get("satisfaction_scale", "nps")
    f = "{:+.1f}" if name == "nps" else "{:.2f}"
    table = Table(title=f"company {'mean CSAT' if name == 'csat' else 'NPS'} per period "
                        f"(validated on the {nps['validation']})")
    for col in ("period", "everyone [90 % interval]", "respondents only", "invitees"):
        table.add_column(col, justify="left" if col == "period" else "right")
    for row in nps["company_per_period"]:
        table.add_row(row["period"], f"{f.format(row[name])} [{f.format(row['low'])}, "
                      f"{f.format(row['high'])}]", f.format(row[f"respondents_{name}"]),
                      f"{row['invitees']:,}")
    return table


def print_training(console: Console, result: dict) -> None:
    churn, nps = result["churn"], result.get("nps")
    console.print(churn_table(churn))
    if churn.get("validation", {}).get("reason"):
        console.print(f"validated by customer folds: {churn['validation']['reason']}")
    gate = churn["gate"]
    console.print(f"churn model version {churn['version']}: {gate['decision']} "
                  f"(valid_roc_auc {gate['candidate_value']:.3f} vs champion "
                  f"{gate['champion_value'] if gate['champion_value'] is not None else 'none'})")
    drivers = ", ".join(f"{d['label']} {d['share']:.0%}" for d in churn["key_drivers"]
                        if d["share"] >= 0.005)
    console.print(f"churn key drivers: {drivers}")
    if nps and nps.get("skipped"):
        console.print(f"predicted-NPS model skipped: {nps['skipped']}")
    elif nps:
        console.print(nps_table(nps))
        if nps.get("company_per_period") and "period" in nps["company_per_period"][0]:
            console.print(period_table(nps))
        gate = nps["gate"]
        console.print(f"NPS model version {nps['version']}: {gate['decision']} "
                      f"(valid_respondent_mae {gate['candidate_value']:.3f}, lower is better)")
        drivers = ", ".join(f"{d['label']} {d['share']:.0%}" for d in nps["key_drivers"]
                            if d["share"] >= 0.005)
        console.print(f"NPS key drivers: {drivers}")
    uplift = result.get("uplift")
    if uplift and uplift.get("skipped"):
        console.print(f"uplift models skipped: {uplift['skipped']}; scoring ranks reps' lists by "
                      "churn risk x value at risk")
    elif uplift:
        console.print(uplift_table(uplift))


def uplift_table(uplift: dict) -> Table:
    """Per action: the randomized log's evidence and the chosen learner's held-out Qini."""
    gate = uplift["gate"]
    table = Table(title=f"uplift: {uplift['learner']}-learner, version {uplift['version']} "
                        f"({gate['decision']}); {uplift['rows']:,} logged actions")
    for col in ("action", "treated", "controls", "churn treated", "churn controls",
                "difference [90 % interval]", "held-out Qini"):
        table.add_column(col, justify="left" if col == "action" else "right")
    for arm in uplift["arms"]:
        qini = uplift["metrics"].get(arm["action"], {}).get("qini", float("nan"))
        table.add_row(arm["action"], f"{arm['treated']:,}", f"{arm['controls']:,}",
                      f"{arm['churn_treated']:.1%}", f"{arm['churn_control']:.1%}",
                      f"{arm['difference']:+.1%} [{arm['difference_lo90']:+.1%}, "
                      f"{arm['difference_hi90']:+.1%}]", f"{qini:+.4f}")
    return table


def print_scoring(console: Console, result: dict) -> None:
    """What a scoring run wrote, and (on the built-in world) what its plan is worth."""
    console.print(f"scoring run {result['run_id']} as of {result['as_of']} "
                  f"(models {result['model_versions']}) -> {result['database']}")
    console.print(f"  {result['customers']:,} customers scored and tagged; {result['planned']:,} actions "
                  f"planned ({result['shown']:,} shown to reps, {result['held_out']:,} held out as "
                  f"control); {result['alerts']:,} alerts")
    missing = result.get("models_missing") or []
    if "nps" in missing:
        console.print("  no predicted-satisfaction model (no survey answers to learn from): "
                      "predicted NPS left empty")
    if "uplift" in missing:
        console.print("  no uplift model (no randomized interventions): action effects are not "
                      "measured yet, so no action is planned; reps' lists rank their customers by "
                      "churn risk x value at risk (alerts of kind high_risk)")
    skipped = ", ".join(f"{k} {v:,}" for k, v in sorted(result["skipped"].items(), key=lambda kv: -kv[1]))
    console.print(f"  not planned: {skipped}")
    value = result.get("policy_value")
    if value:
        table = Table(title=f"policy value with the world's true effects: same rules, budget "
                            f"{value['budget']:,.0f} ({value.get('budget_basis', 'model plan')})")
        for col in ("plan", "value retained", "vs oracle", "customers"):
            table.add_column(col, justify="left" if col == "plan" else "right")
        for name, row in value["plans"].items():
            table.add_row(name, f"{row['value']:,.0f}", f"{row['share_of_oracle']:.0%}",
                          f"{row['customers']:,}")
        console.print(table)


def print_where_to_look(console: Console, settings) -> None:
    """The end of `cem demo`: where each step's output is and how to open the UIs."""
    console.print(f"source exports:   {settings.raw_dir}")
    console.print(f"hidden truth:     {settings.truth_dir} (evaluation code only)")
    console.print(f"clean tables:     {settings.clean_dir}  (report: ingest_report.json)")
    console.print(f"quarantine:       {settings.quarantine_dir}")
    console.print(f"feature store:    {settings.feature_dir} (tables), {settings.feast_dir} "
                  "(registry, online store); try `cem lookup C0000002`")
    console.print(f"models:           MLflow tracking store {settings.tracking_uri}")
    console.print(f"serving database: {settings.serving_database_url} (scores, tags, ranked actions)")
    console.print("reps' page:       `make serve`, then http://127.0.0.1:8000/login with a token from "
                  f"{settings.serving_dir / 'tokens.json'} (API docs: http://127.0.0.1:8000/docs)")
    console.print("MLflow UI:        `make ui`, then http://127.0.0.1:5000")
    console.print("Prefect UI:       `make prefect-ui`, then http://127.0.0.1:4200; export "
                  "PREFECT_API_URL=http://127.0.0.1:4200/api before `cem ...` to see flows there")


def tokens_line(path, issued: dict, rep: str | None, expires) -> str:
    """What `cem tokens` says: how many tokens, until when, and where they are."""
    until = f"valid until {expires:%Y-%m-%d %H:%M} UTC" if expires else "no expiry"
    if rep is not None:
        return (f"new token for {escape(rep)} ({until}) written to {path}; its old token and "
                "sign-ins stop working")
    reps = sorted(r for r in issued if r != "manager")
    return (f"{len(issued)} tokens ({len(reps)} reps and a manager; {until}) written to {path} "
            "(mode 0600); the database keeps only their SHA-256 hashes")
