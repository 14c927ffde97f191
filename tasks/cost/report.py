"""Cost reports: one DAG run's page (what the **Cost** button opens), and the totals per DAG and
per step over a range of days with a chart of daily cost and savings."""

from __future__ import annotations

import html
import json
import tempfile
from datetime import date
from pathlib import Path

from tasks.cost.ledger import read_ledger, run_summary, summary_line
from tasks.settings import Settings
from tasks.storage import Store, join


def run_page(dag_id: str, run_id: str, settings: Settings) -> str:
    """The run's ledger as a small self-contained HTML page."""
    s = run_summary(dag_id, run_id, settings)
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(a['task_id'])}</td><td>{a['try_number']}</td><td>{esc(a['state'])}</td>"
        f"<td>{a['seconds']:.1f}</td><td>{esc(a['capacity_type'])}</td>"
        f"<td>{esc(a['instance_type'])}{' / ' + esc(a['zone']) if a.get('zone') else ''}</td>"
        f"<td>{a['hourly_usd']:.4f}</td><td>{a['cost_usd']:.6f}</td>"
        f"<td>{a['on_demand_cost_usd']:.6f}</td><td>{esc(a.get('note') or '')}</td></tr>"
        for a in s["attempt_rows"])
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Cost of {esc(dag_id)} {esc(run_id)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}th{{background:#f1f3f4}}</style>
</head><body><h1>Cost of {esc(dag_id)}</h1><p>Run <code>{esc(run_id)}</code></p>
<p><b>{esc(summary_line(s))}</b></p>
<table><tr><th>task</th><th>try</th><th>state</th><th>seconds</th><th>capacity</th>
<th>instance / zone</th><th>$/h</th><th>cost $</th><th>on demand $</th><th>note</th></tr>
{rows or '<tr><td colspan="10">no attempt recorded yet</td></tr>'}</table></body></html>"""


def cost_report(first: date, last: date, settings: Settings, out: Path | None = None) -> dict:
    """Totals per DAG and per step for runs whose day lies in [first, last], and a PNG of the
    daily cost and savings (``out``, else ``reports/costs/cost-<first>-<last>.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    df = read_ledger(settings)
    if len(df):
        day = df["run_day"].astype(str)
        df = df[(day >= first.isoformat()) & (day <= last.isoformat())]
    if df.empty:
        raise LookupError(f"no task attempt in the cost ledger for runs between {first} and {last}")
    df = df.assign(saving_usd=df["on_demand_cost_usd"] - df["cost_usd"])

    def totals(by):
        g = df.groupby(by).agg(attempts=("try_number", "count"), seconds=("seconds", "sum"),
                               cost_usd=("cost_usd", "sum"), on_demand_cost_usd=("on_demand_cost_usd", "sum"),
                               saving_usd=("saving_usd", "sum")).reset_index()
        return json.loads(g.round(6).to_json(orient="records"))

    daily = df.groupby("run_day")[["cost_usd", "saving_usd"]].sum().sort_index()
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=110)
    days = [date.fromisoformat(d) for d in daily.index]
    ax.bar(days, daily["cost_usd"], color="#1a73e8", label="cost (what was paid)")
    ax.bar(days, daily["saving_usd"], bottom=daily["cost_usd"], color="#81c995",
           label="saved against on-demand")
    ax.set_ylabel("US dollars")
    ax.set_title(f"Flightline cost {first} to {last}: ${df['cost_usd'].sum():.2f} paid, "
                 f"${df['saving_usd'].sum():.2f} saved against on-demand")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3, axis="y")
    fig.autofmt_xdate()
    fig.tight_layout()
    with tempfile.TemporaryDirectory(prefix="flightline-cost-") as tmp:
        png = Path(tmp) / "cost.png"
        fig.savefig(png)
        plt.close(fig)
        if out is not None:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_bytes(png.read_bytes())
            where = str(out)
        else:
            where = join(settings.zone("reports"), "costs", f"cost-{first}-{last}.png")
            Store(settings).upload_file(png, where)
    return {"png": where, "attempts": len(df), "cost_usd": round(float(df["cost_usd"].sum()), 6),
            "on_demand_cost_usd": round(float(df["on_demand_cost_usd"].sum()), 6),
            "saving_usd": round(float(df["saving_usd"].sum()), 6),
            "per_dag": totals("dag_id"), "per_step": totals(["dag_id", "task_id"])}
