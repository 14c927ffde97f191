"""Cost reports: one DAG run's page (what the **Cost** button opens), and the totals per DAG and
per step over a range of days with a chart of daily cost and savings (``flightline cost report``
writes it as a PNG; the reports app serves it as a page).

The pages are plain HTML with inline CSS and SVG and no script: the reports app sends them
sandboxed, with ``connect-src 'none'`` and no forms. Every name from the ledger is escaped.
Links are root-relative: the Airflow UI's own routes (``/dags/<dag>/runs/<run>``) and the paths the
caller gives for the reports app's pages.
"""

from __future__ import annotations

import html
import io
import json
import re
import tempfile
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from tasks.cost.ledger import read_ledger, run_summary, summary_line
from tasks.settings import Settings
from tasks.storage import Store, join

esc = html.escape

#: Shared by both pages: readable on a laptop and inside the Airflow UI's plugin frame.
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em 2em;color:#202124}
h1{font-size:1.5em;margin:.1em 0 .3em}h2{font-size:1.1em;margin:1.6em 0 .5em}
.kicker{color:#5f6368;font-size:.85em;text-transform:uppercase;letter-spacing:.05em}
.meta{color:#3c4043;margin:.2em 0}.meta code{background:#f1f3f4;padding:1px 4px;border-radius:3px}
.links a,.presets a{margin-right:1.2em}a{color:#1a73e8}
.state{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:.9em}
.state-success{background:#e6f4ea;color:#137333}.state-failed{background:#fce8e6;color:#c5221f}
.state-running{background:#e8f0fe;color:#1967d2}
.note{color:#5f6368;font-size:.85em}
.cards{display:flex;gap:1em;flex-wrap:wrap;margin:1em 0}
.card{border:1px solid #dadce0;border-radius:8px;padding:.6em 1em;min-width:9em}
.card b{display:block;font-size:1.35em}.card span{color:#5f6368;font-size:.85em}
.card.saving b{color:#137333}
table{border-collapse:collapse;font-size:.9em}
td,th{border:1px solid #dadce0;padding:4px 8px;text-align:left}th{background:#f1f3f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.presets a.current{font-weight:600;color:#202124;text-decoration:none}
svg text{font-family:inherit}
"""


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>")


def _usd(x: float) -> str:
    return f"${x:,.4f}"


def _cards(cost: float, on_demand: float, extra: list[tuple[str, str]]) -> str:
    saving = on_demand - cost
    share = f" ({saving / on_demand:.0%})" if on_demand else ""
    cards = [("cost", _usd(cost), "paid"), ("", _usd(on_demand), "on demand would have cost"),
             ("saving", _usd(saving) + share, "saved against on-demand")]
    cards += [("", value, label) for label, value in extra]
    return '<div class="cards">' + "".join(
        f'<div class="card {cls}"><b>{esc(value)}</b><span>{esc(label)}</span></div>'
        for cls, value, label in cards) + "</div>"


def run_state(attempt_rows: list[dict]) -> str:
    """The run's state as far as the ledger knows it: from the latest recorded attempt of each
    task (and map index). ``failed`` when one of them failed; ``running`` when one waits for a
    retry (``up_for_retry``, or a spot interruption that is retried); else ``success`` (``unknown``
    without a row). A task that
    has not ended has no row yet, so a run whose other tasks have yet to start reads ``success``
    too; the Airflow UI has the authoritative state."""
    latest: dict[tuple, dict] = {}
    for a in attempt_rows:
        key = (a["task_id"], a.get("map_index", -1))
        if key not in latest or a["try_number"] >= latest[key]["try_number"]:
            latest[key] = a
    states = {str(a["state"]) for a in latest.values()}
    if states & {"failed", "upstream_failed"}:
        return "failed"
    if states - {"success", "skipped"}:
        return "running"
    return "success" if states else "unknown"


def _bar_chart(steps: list[dict]) -> str:
    """A horizontal bar per task, drawn by hand as inline SVG: the cost (dark) over what the same
    time on demand would have cost (light); both on one scale, so widths are proportional."""
    label_w, bar_w, value_w, row = 210, 340, 190, 24
    scale = max([s["on_demand_cost_usd"] for s in steps] + [s["cost_usd"] for s in steps] + [0])
    height = row * len(steps) + 8
    parts = []
    for i, s in enumerate(steps):
        y = 4 + i * row
        width = bar_w * s["cost_usd"] / scale if scale else 0.0
        od_width = bar_w * s["on_demand_cost_usd"] / scale if scale else 0.0
        name = s["task_id"] if len(s["task_id"]) <= 30 else s["task_id"][:29] + "\u2026"
        tip = (f"{s['task_id']}: {_usd(s['cost_usd'])} paid, {_usd(s['on_demand_cost_usd'])} on "
               f"demand, {s['attempts']} attempt(s), {s['seconds']:.0f} s")
        parts.append(
            f'<g><title>{esc(tip)}</title>'
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12">{esc(name)}</text>'
            f'<rect class="od" x="{label_w}" y="{y + 3}" width="{od_width:.2f}" height="{row - 8}" '
            f'fill="#d2e3fc"/>'
            f'<rect class="cost" data-task="{esc(s["task_id"])}" x="{label_w}" y="{y + 3}" '
            f'width="{width:.2f}" height="{row - 8}" fill="#1a73e8"/>'
            f'<text x="{label_w + max(width, od_width) + 6:.2f}" y="{y + 15}" font-size="12" '
            f'fill="#3c4043">{esc(_usd(s["cost_usd"]))}</text></g>')
    total_w = label_w + bar_w + value_w
    return (f'<svg class="bars" role="img" aria-label="cost per task" width="{total_w}" '
            f'height="{height}" viewBox="0 0 {total_w} {height}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>')


def run_links(dag_id: str, run_id: str) -> dict:
    """The Airflow UI's pages of the run and its DAG (Airflow 3 routes, names quoted)."""
    dag = quote(dag_id, safe="")
    return {"run": f"/dags/{dag}/runs/{quote(run_id, safe='')}", "dag": f"/dags/{dag}"}


def report_href(report_path: str, first: date, last: date) -> str:
    return f"{report_path}?{urlencode({'start': first.isoformat(), 'end': last.isoformat()})}"


def run_page(dag_id: str, run_id: str, settings: Settings, *, report_path: str | None = None,
             state: str | None = None) -> str:
    """The run's cost as a small self-contained HTML page: its DAG, day and state, the totals
    with the saving, a bar per task and every attempt, with links to the run and its DAG in the
    Airflow UI and (``report_path``: the date-range report's path) to the costs of its day.
    ``state``: the run's state as Airflow has it; without it, what the ledger knows."""
    s = run_summary(dag_id, run_id, settings)
    attempts = s["attempt_rows"]
    days = sorted({str(a["run_day"]) for a in attempts})
    day = (days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}") if days else "unknown"
    known = state is not None
    state = str(state) if known else run_state(attempts)
    ledger_note = "" if known else (
        '<p class="note">The state is what the cost ledger knows: the latest recorded attempt of '
        "each task (a task that has not ended yet is not recorded). The run's page in Airflow has "
        "the full state.</p>")
    order = {}
    for a in attempts:  # tasks in the order they first started (the ledger is sorted by start)
        order.setdefault(a["task_id"], len(order))
    steps = sorted(s["steps"], key=lambda st: order.get(st["task_id"], 0))
    links = run_links(dag_id, run_id)
    link_items = [f'<a href="{esc(links["run"])}" target="_top">Open the run in Airflow</a>',
                  f'<a href="{esc(links["dag"])}" target="_top">The DAG</a>']
    if report_path and days:
        first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
        link_items.append(f'<a href="{esc(report_href(report_path, first, last))}">'
                          f"Costs of {esc(day)}, all DAGs</a>")
    rows = "".join(
        f"<tr><td>{esc(a['task_id'])}{'' if a.get('map_index', -1) in (-1, None) else ' [' + str(a['map_index']) + ']'}</td>"
        f"<td class=num>{a['try_number']}</td><td>{esc(str(a['state']))}</td>"
        f"<td class=num>{a['seconds']:.1f}</td><td>{esc(str(a['capacity_type']))}</td>"
        f"<td>{esc(str(a['instance_type']))}{' / ' + esc(str(a['zone'])) if a.get('zone') else ''}</td>"
        f"<td class=num>{a['hourly_usd']:.4f}</td><td class=num>{a['cost_usd']:.6f}</td>"
        f"<td class=num>{a['on_demand_cost_usd']:.6f}</td><td>{esc(a.get('note') or '')}</td></tr>"
        for a in attempts)
    extra = [("task attempts", str(s["attempts"])), ("seconds of work", f"{s['seconds']:.0f}")]
    if s["interruptions"]:
        extra.append(("spot interruptions", f"{s['interruptions']} ({_usd(s['interruption_cost_usd'])})"))
    body = f"""<div class="kicker">Flightline &middot; cost of a DAG run</div>
<h1>{esc(dag_id)}</h1>
<p class="meta">Run <code>{esc(run_id)}</code> &middot; day {esc(day)} &middot;
<span class="state state-{state}">{state}</span></p>
{ledger_note}
<p class="note">Costs are recorded as each task attempt ends: a running or waiting task is not
counted yet.</p>
<p class="links">{" ".join(link_items)}</p>
{_cards(s["cost_usd"], s["on_demand_cost_usd"], extra)}
<p class="summary">{esc(summary_line(s))}</p>
<h2>Cost per task</h2>
{_bar_chart(steps) if steps else '<p>No task attempt recorded yet.</p>'}
<p class="note">Dark: what was paid; light: the same time on demand.</p>
<h2>Attempts</h2>
<table><tr><th>task</th><th>try</th><th>state</th><th>seconds</th><th>capacity</th>
<th>instance / zone</th><th>$/h</th><th>cost $</th><th>on demand $</th><th>note</th></tr>
{rows or '<tr><td colspan="10">no attempt recorded yet</td></tr>'}</table>"""
    return _page(f"Cost of {dag_id} {run_id}", body)


def ledger_days(settings: Settings, df=None) -> tuple[date, date] | None:
    """The first and last run day in the ledger (None when it is empty)."""
    df = read_ledger(settings) if df is None else df
    if df.empty:
        return None
    days = df["run_day"].astype(str)
    return date.fromisoformat(days.min()), date.fromisoformat(days.max())


def _range_frame(first: date, last: date, settings: Settings, df=None):
    """The ledger's attempts (``df``, else read) of runs whose day lies in [first, last], with
    their saving."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    df = read_ledger(settings) if df is None else df
    if len(df):
        day = df["run_day"].astype(str)
        df = df[(day >= first.isoformat()) & (day <= last.isoformat())]
    if df.empty:
        raise LookupError(f"no task attempt in the cost ledger for runs between {first} and {last}")
    return df.assign(saving_usd=df["on_demand_cost_usd"] - df["cost_usd"])


def _totals(df, by) -> list[dict]:
    g = df.groupby(by).agg(attempts=("try_number", "count"), seconds=("seconds", "sum"),
                           cost_usd=("cost_usd", "sum"), on_demand_cost_usd=("on_demand_cost_usd", "sum"),
                           saving_usd=("saving_usd", "sum")).reset_index()
    return json.loads(g.round(6).to_json(orient="records"))


def _figure(df, first: date, last: date):
    """The daily cost and saving as stacked bars (a matplotlib Figure, no pyplot: the API server
    draws it in a request thread)."""
    from matplotlib.dates import DateFormatter, DayLocator, date2num
    from matplotlib.figure import Figure

    daily = df.groupby("run_day")[["cost_usd", "saving_usd"]].sum().sort_index()
    fig = Figure(figsize=(11, 4.5), dpi=110)
    ax = fig.subplots()
    days = [date.fromisoformat(d) for d in daily.index]
    ax.bar(days, daily["cost_usd"], color="#1a73e8", label="cost (what was paid)")
    ax.bar(days, daily["saving_usd"], bottom=daily["cost_usd"], color="#81c995",
           label="saved against on-demand")
    ax.set_ylabel("US dollars")
    # "\$": two bare dollar signs would make matplotlib set the text between them as math.
    ax.set_title(f"Flightline cost {first} to {last}: \\${df['cost_usd'].sum():.2f} paid, "
                 f"\\${df['saving_usd'].sum():.2f} saved against on-demand")
    top = float((daily["cost_usd"] + daily["saving_usd"]).max())
    ax.set_ylim(0, top * 1.3 if top > 0 else 1)  # headroom: the legend covers no bar
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3, axis="y")
    # The whole range on the axis, by days: a range of one day is one bar, not hours of axis.
    pad = 0.6 + max(0, 6 - (last - first).days) / 2  # at least a week wide: bars stay bars
    ax.set_xlim(date2num(first) - pad, date2num(last) + pad)
    if (last - first).days < 15:
        ax.xaxis.set_major_locator(DayLocator())
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _chart_bytes(fig, fmt: str) -> bytes:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "flightline"}):
        fig.savefig(buf, format=fmt)
    return buf.getvalue()


def _report(df) -> dict:
    return {"attempts": len(df), "runs": int(df[["dag_id", "run_id"]].drop_duplicates().shape[0]),
            "cost_usd": round(float(df["cost_usd"].sum()), 6),
            "on_demand_cost_usd": round(float(df["on_demand_cost_usd"].sum()), 6),
            "saving_usd": round(float(df["saving_usd"].sum()), 6),
            "per_dag": _totals(df, "dag_id"), "per_step": _totals(df, ["dag_id", "task_id"])}


def cost_report(first: date, last: date, settings: Settings, out: Path | None = None) -> dict:
    """Totals per DAG and per step for runs whose day lies in [first, last], and a PNG of the
    daily cost and savings (``out``, else ``reports/costs/cost-<first>-<last>.png``)."""
    df = _range_frame(first, last, settings)
    png_bytes = _chart_bytes(_figure(df, first, last), "png")
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_bytes(png_bytes)
        where = str(out)
    else:
        where = join(settings.zone("reports"), "costs", f"cost-{first}-{last}.png")
        with tempfile.TemporaryDirectory(prefix="flightline-cost-") as tmp:
            png = Path(tmp) / "cost.png"
            png.write_bytes(png_bytes)
            Store(settings).upload_file(png, where)
    return {"png": where, **_report(df)}


def report_presets(bounds: tuple[date, date] | None) -> list[tuple[str, date, date]]:
    """The ranges the report page offers: the last 7, 30 and 90 days of the ledger and all of it
    (the page is sandboxed without forms, so ranges are links)."""
    if bounds is None:
        return []
    first, last = bounds
    presets = [(f"last {n} days", max(first, last - timedelta(days=n - 1)), last) for n in (7, 30, 90)]
    presets.append(("the whole ledger", first, last))
    # One link per range: a short ledger's "last 90 days" is the whole ledger.
    return [p for i, p in enumerate(presets) if p[1:] not in [q[1:] for q in presets[i + 1:]]]


def _money_table(rows: list[dict], keys: list[tuple[str, str]], link=None) -> str:
    head = "".join(f"<th>{esc(label)}</th>" for _, label in keys)
    head += "<th>attempts</th><th>seconds</th><th>cost $</th><th>on demand $</th><th>saved $</th><th>saved</th>"
    body = []
    for r in rows:
        cells = []
        for i, (k, _) in enumerate(keys):
            text = esc(str(r[k]))
            if link and i == len(keys) - 1:
                text = f'<a href="{esc(link(r))}">{text}</a>'
            cells.append(f"<td>{text}</td>")
        share = f"{r['saving_usd'] / r['on_demand_cost_usd']:.0%}" if r["on_demand_cost_usd"] else ""
        cells += [f"<td class=num>{r['attempts']}</td>", f"<td class=num>{r['seconds']:.0f}</td>",
                  f"<td class=num>{r['cost_usd']:.4f}</td>", f"<td class=num>{r['on_demand_cost_usd']:.4f}</td>",
                  f"<td class=num>{r['saving_usd']:.4f}</td>", f"<td class=num>{share}</td>"]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _inline_svg(svg: bytes) -> str:
    """matplotlib's SVG without its XML prologue, scaled to the page's width."""
    text = svg.decode("utf-8")
    text = text[text.index("<svg"):]
    head, rest = text.split(">", 1)
    head = re.sub(r'\s(width|height)="[^"]*"', "", head)
    return f'{head} class="chart" style="width:100%;max-width:1100px;height:auto">{rest}'


def report_page(first: date, last: date, settings: Settings, *, report_path: str,
                run_path: str) -> str:
    """The date-range report as a page: the totals of :func:`cost_report` with the saving, the
    daily chart (inline SVG), every run (linked to its cost page: ``run_path``/<dag>/<run>) and
    links to other ranges (``report_path``); a range without rows says so."""
    ledger = read_ledger(settings)
    presets = report_presets(ledger_days(settings, ledger))
    links = "".join(
        f'<a href="{esc(report_href(report_path, a, b))}"'
        f'{" class=current" if (a, b) == (first, last) else ""}>{esc(label)}</a>'
        for label, a, b in presets)
    head = (f'<div class="kicker">Flightline &middot; cost report</div>'
            f"<h1>Costs of runs from {first} to {last}</h1>"
            f'<p class="presets">{links or "The cost ledger is empty."}</p>')
    try:
        df = _range_frame(first, last, settings, ledger)
    except LookupError as e:
        return _page(f"Flightline cost {first} to {last}", head + f"<p>{esc(str(e))}.</p>")
    r = _report(df)
    chart = _inline_svg(_chart_bytes(_figure(df, first, last), "svg"))
    runs = _totals(df, ["dag_id", "run_id", "run_day"])
    runs.sort(key=lambda x: (x["run_day"], x["dag_id"], x["run_id"]))
    run_table = _money_table(
        runs, [("run_day", "day"), ("dag_id", "DAG"), ("run_id", "run")],
        link=lambda x: f"{run_path}/{quote(x['dag_id'], safe='')}/{quote(x['run_id'], safe='')}")
    body = f"""{head}
{_cards(r["cost_usd"], r["on_demand_cost_usd"], [("runs", str(r["runs"])), ("task attempts", str(r["attempts"]))])}
{chart}
<h2>Per DAG</h2>{_money_table(r["per_dag"], [("dag_id", "DAG")])}
<h2>Per step</h2>{_money_table(r["per_step"], [("dag_id", "DAG"), ("task_id", "step")])}
<h2>Runs</h2>{run_table}
<p class="note">Runs are counted on their logical day. The same totals:
<code>flightline cost report --from {first} --to {last}</code>.</p>"""
    return _page(f"Flightline cost {first} to {last}", body)
