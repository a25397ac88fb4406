"""The learning loop's report as a self-contained HTML page: the tables of
`monitoring.loop_report` and matplotlib plots (equity and drawdown of both engines with
the lifecycle events, calibration, feature importance, the lifecycle timeline) embedded as
PNGs. Works on a JSON-safe report dict only, so a saved `report.json` renders again."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from core.performance import HEADLINE_FIGURES, drawdowns


def _figure_png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _curve(section: Mapping[str, Any]) -> pd.Series:
    points = section.get("equity_curve") or []
    if not points:
        return pd.Series(dtype=float)
    frame = pd.DataFrame(points, columns=["timestamp", "equity"])
    return pd.Series(
        frame["equity"].astype(float).to_numpy(), index=pd.to_datetime(frame["timestamp"], utc=True)
    )


def _plots(report: Mapping[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}
    curves = {
        "ungated baseline": _curve(report["baseline"]),
        "model-gated (ML)": _curve(report["ml"]),
    }

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for label, curve in curves.items():
        if len(curve):
            ax.plot(curve.index, curve.to_numpy(), label=label)
    for event in report.get("ab", {}).get("timeline", []):
        if event.get("action") in ("promote", "rollback", "challenger"):
            ax.axvline(pd.Timestamp(event["at"]), color="grey", linestyle=":", linewidth=1)
    ax.set_title("Equity: gated vs ungated (dotted lines: model lifecycle events)")
    ax.set_ylabel("equity ($)")
    ax.legend()
    plots["equity"] = _figure_png(fig)

    fig, ax = plt.subplots(figsize=(9, 2.8))
    for label, curve in curves.items():
        if len(curve):
            # `core.performance` counts drawdown as a positive fraction; drawn below zero.
            ax.fill_between(curve.index, -drawdowns(curve) * 100, 0, alpha=0.4, label=label)
    ax.set_title("Drawdown from running peak")
    ax.set_ylabel("%")
    ax.legend()
    plots["drawdown"] = _figure_png(fig)

    calibration = report.get("calibration", {})
    if calibration.get("predicted"):
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect")
        ax.plot(
            calibration["predicted"], calibration["observed"], marker="o", label="signal_quality"
        )
        ax.set_xlabel("predicted win probability")
        ax.set_ylabel("observed win rate")
        ax.set_title(
            f"Champion calibration, trading window ({calibration.get('events', '?')} signals)"
        )
        ax.legend()
        plots["calibration"] = _figure_png(fig)

    importance = report.get("feature_importance", {})
    if importance:
        top = sorted(importance.items(), key=lambda item: item[1], reverse=True)[:20][::-1]
        fig, ax = plt.subplots(figsize=(7, 5.5))
        ax.barh([name for name, _ in top], [value for _, value in top])
        ax.set_title("signal_quality champion: permutation importance (log-loss increase)")
        plots["importance"] = _figure_png(fig)

    timeline = report.get("ab", {}).get("timeline", [])
    if timeline:
        fig, ax = plt.subplots(figsize=(9, 2.6))
        lanes = {
            "retrain": 0,
            "challenger": 1,
            "not_registered": 1,
            "promote": 2,
            "retire": 2,
            "rollback": 3,
            "keep": 2,
        }
        colours = {
            "retrain": "tab:blue",
            "challenger": "tab:orange",
            "not_registered": "tab:grey",
            "promote": "tab:green",
            "retire": "tab:red",
            "rollback": "tab:purple",
            "keep": "tab:olive",
        }
        for event in timeline:
            action = str(event.get("action"))
            # Rejected candidates as crosses under the challengers' dots at the same date.
            ax.scatter(
                pd.Timestamp(event["at"]),
                lanes.get(action, 0) - (0.15 if action == "not_registered" else 0.0),
                color=colours.get(action, "black"),
                marker="x" if action == "not_registered" else "o",
                s=40,
                label=action,
                zorder=3 if action == "challenger" else 2,
            )
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), ncol=6, fontsize=8, loc="upper left")
        ax.set_yticks([0, 1, 2, 3], ["retrain", "challenger", "A/B verdict", "rollback"])
        ax.set_ylim(-0.5, 4.2)
        ax.set_title("Model lifecycle timeline (exchange dates)")
        plots["timeline"] = _figure_png(fig)
    return plots


# --------------------------------------------------------------------------- html


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.4f}"
    return html.escape(str(value))


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Mapping[str, Any]) -> str:
    """A self-contained HTML page (plots inline) for a JSON-safe report dict."""
    plots = _plots(report)
    perf_rows = [
        [key, report["baseline"].get(key), report["ml"].get(key)]
        for key in (*HEADLINE_FIGURES, "net_pnl")
    ]
    model_rows = []
    for name, info in report.get("models", {}).items():
        metrics = info.get("metrics", {})
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in list(metrics.items())[:6])
        model_rows.append([name, info.get("champion_version"), info.get("aliases"), shown])
    ab = report.get("ab", {})
    arm_rows = [[arm, count] for arm, count in ab.get("decisions", {}).items()]
    timeline_rows = [
        [e.get("at"), e.get("action"), e.get("model", ""), e.get("detail", "")]
        for e in ab.get("timeline", [])
    ]
    images = "".join(
        f'<figure><img src="data:image/png;base64,{png}" alt="{name}"/></figure>'
        for name, png in plots.items()
    )
    meta = report.get("run", {})
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tradewind demo report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; font-size: 0.9em; }}
th {{ background: #f3f3f3; }} figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
.note {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>Tradewind demo report</h1>
<p class="note">Symbols {_fmt(meta.get("symbols"))};
training window {_fmt(meta.get("train_window"))};
trading window {_fmt(meta.get("trade_window"))}; {_fmt(report["features"].get("count"))} features;
wall time {_fmt(meta.get("wall_seconds"))} s.</p>
<h2>Ungated baseline vs model-gated engine (same bars, same strategies)</h2>
{_table(perf_rows, ["figure", "baseline (ungated)", "ml (gated)"])}
<h2>Models (champion at the end of the run; out-of-time metrics)</h2>
{_table(model_rows, ["model", "champion version", "aliases", "out-of-time metrics"])}
<h2>A/B: decisions per arm, promotions, rollbacks</h2>
{_table(arm_rows, ["arm", "decisions"])}
<p>Promotions: {len(ab.get("promotions", []))}; retired challengers: {len(ab.get("retired", []))};
rollbacks: {len(ab.get("rollbacks", []))}.</p>
{_table(timeline_rows, ["at", "action", "model", "detail"])}
<h2>Plots</h2>
{images}
{_evaluation(report)}
</body></html>
"""


def _evaluation(report: Mapping[str, Any]) -> str:
    """The walk-forward evaluation and the data it ran on, when the report has them."""
    from monitoring.evaluation_page import evaluation_fragment

    data = report.get("data") or {}
    note = (f'<p class="note">Data: {_fmt(data.get("symbols"))} symbols, '
            f'{_fmt(data.get("held_out_symbols"))} of them held out (traded, never trained '
            f'on); {_fmt(data.get("bars"))} bars, {_fmt(data.get("start"))} → '
            f'{_fmt(data.get("end"))}.</p>' if data else "")
    return note + (evaluation_fragment(report["evaluation"]) if report.get("evaluation") else "")
