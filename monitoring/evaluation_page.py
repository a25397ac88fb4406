"""The evaluation as files: `evaluation.json` (the report's `evaluation` section and the
run's details) next to a self-contained HTML page with plots — equity of both arms per
fold, the per-fold table, the pooled ratios with their intervals, refusal reasons and gate
coverage. `evaluation_fragment` is the same content for a page that embeds it (the
demo's report). Works on JSON-safe dicts only, so a saved JSON renders again."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from core.strict_json import json_safe
from monitoring.evaluation import ARM_METRICS, REFUSAL_REASONS, check_evaluation, fold_name

TABLE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: right; font-size: 0.85em; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } img { max-width: 100%; } .note { color: #555; font-size: 0.9em; }
"""


def _cell(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, list | tuple) and len(value) == 2 and all(
        isinstance(v, float) for v in value
    ):
        return f"{value[0]:.2f}–{value[1]:.2f}"
    return html.escape(str(value))


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def fold_rows(evaluation: Mapping[str, Any]) -> list[list[Any]]:
    """One row per fold: dates, signal scores, both arms' figures, the fold's ratios."""
    rows = []
    for fold in evaluation.get("folds", []):
        label = f"{str(fold['start'])[:10]} → {str(fold['end'])[:10]}"
        for arm in ("ungated", "policy"):
            figures = fold[arm]
            first = arm == "ungated"
            rows.append([
                label if first else "",
                fold.get("auc") if first else None,
                fold.get("brier") if first else None,
                arm,
                *(figures.get(key) for key in ARM_METRICS),
                None if first else fold.get("pf_ratio"),
                None if first else fold.get("dd_ratio"),
                None if first else fold.get("kept_ratio"),
                None if first else fold.get("coverage"),
                fold.get("ood_false_alarm_rate") if first else None,
            ])
    return rows


FOLD_HEADER = ["fold", "AUC", "Brier", "arm", *ARM_METRICS, "PF ratio", "DD ratio", "kept",
               "coverage", "OOD alarms"]


def fold_lines(evaluation: Mapping[str, Any]) -> list[str]:
    """One line of text per fold (a terminal of any width): signal AUC, both arms' trades,
    profit factor and max drawdown, trades kept and out-of-distribution false alarms."""

    def number(value: Any, spec: str = ".2f") -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        return f"{value:{spec}}" if isinstance(value, float) else str(value)

    lines = []
    for fold in evaluation.get("folds", []):
        arms = " · ".join(
            f"{arm} {fold[arm]['trades']} trades, PF {number(fold[arm]['profit_factor'])}, "
            f"max DD {number(fold[arm]['max_drawdown'], '.1%')}"
            for arm in ("ungated", "policy")
        )
        name = fold_name(fold) if "year" in fold else str(fold["start"])[:4]
        lines.append(
            f"{name}: AUC {number(fold.get('auc'), '.3f')}"
            f" · {arms} · kept {number(fold.get('kept_ratio'))} · OOD alarms "
            f"{number(fold.get('ood_false_alarm_rate'), '.1%')}"
        )
    return lines


def summary_lines(evaluation: Mapping[str, Any]) -> list[str]:
    """The evaluation for a terminal: one line per fold, the pooled ratios with their
    intervals, trades kept and signal AUC, the refusals by reason."""
    kept, auc = evaluation.get("kept_ratio"), evaluation.get("auc")
    refused = ", ".join(f"{k} {v}" for k, v in evaluation.get("refusals", {}).items() if v)
    note = evaluation.get("note")
    return [
        *([f"{evaluation.get('timeframe')} bars, {note}"] if note else []),
        *fold_lines(evaluation),
        f"pooled: profit factor ratio {interval_text(evaluation, 'pf_ratio')}, drawdown "
        f"ratio {interval_text(evaluation, 'dd_ratio')}, trades kept "
        f"{'–' if kept is None else f'{kept:.2f}'}, signal AUC "
        f"{'–' if auc is None or math.isnan(auc) else f'{auc:.3f}'}",
        f"refusals by reason: {refused or 'none'}",
    ]


def interval_text(evaluation: Mapping[str, Any], key: str) -> str:
    """`1.19 (90% CI 0.50–3.20)` for a pooled ratio."""
    value, bounds = evaluation.get(key), evaluation.get(f"{key}_ci")
    text = "–" if value is None else f"{value:.2f}"
    return text + (f" (90% CI {bounds[0]:.2f}–{bounds[1]:.2f})" if bounds else "")


def figure_png(fig: Any) -> str:
    """A matplotlib figure as a base64 PNG (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _curve(points: Sequence[Sequence[Any]]) -> pd.Series:
    if not points:
        return pd.Series(dtype=float)
    frame = pd.DataFrame(points, columns=["timestamp", "equity"])
    return pd.Series(frame["equity"].astype(float).to_numpy(),
                     index=pd.to_datetime(frame["timestamp"], utc=True))


def evaluation_plots(evaluation: Mapping[str, Any]) -> dict[str, str]:
    """The page's plots as base64 PNGs, by name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folds = evaluation.get("folds", [])
    plots: dict[str, str] = {}
    if folds:
        fig, axes = plt.subplots(1, len(folds), figsize=(4.2 * len(folds), 3.2), squeeze=False)
        for ax, fold in zip(axes[0], folds, strict=True):
            for arm, colour in (("ungated", "tab:grey"), ("policy", "tab:blue")):
                curve = _curve(fold.get("equity", {}).get(arm, []))
                if len(curve):
                    ax.plot(curve.index, curve.to_numpy(), label=arm, color=colour)
            ax.set_title(f"{str(fold['start'])[:10]} → {str(fold['end'])[:10]}", fontsize=9)
            ax.tick_params(axis="x", labelrotation=30, labelsize=7)
            ax.legend(fontsize=7)
        axes[0][0].set_ylabel("equity ($)")
        where = ("the same symbols, later sessions (out of time only)"
                 if evaluation.get("note") else "the held-out symbols")
        fig.suptitle(f"Equity per fold: the same engine on {where}, ungated vs policy",
                     fontsize=10)
        plots["equity"] = figure_png(fig)

    fig, ax = plt.subplots(figsize=(6, 2.8))
    for row, (key, goal, better) in enumerate(
        (("pf_ratio", 1.15, "≥"), ("dd_ratio", 0.85, "≤"))
    ):
        value, bounds = evaluation.get(key), evaluation.get(f"{key}_ci")
        if value is not None and value != "inf":
            ax.plot([float(value)], [row], "o", color="tab:blue")
        if bounds:
            ax.plot(bounds, [row, row], "-", color="tab:blue", linewidth=3, alpha=0.5)
        ax.plot([goal], [row], "|", color="tab:red", markersize=18,
                label="target" if row == 0 else None)
        ax.text(goal, row + 0.25, f"{better} {goal}", color="tab:red", fontsize=8)
    ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.set_yticks([0, 1], ["profit factor\npolicy / ungated", "max drawdown\npolicy / ungated"])
    ax.set_ylim(-0.6, 1.7)
    ax.set_title("Pooled ratios with 90% block-bootstrap intervals", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    plots["intervals"] = figure_png(fig)

    if folds:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
        names = [fold_name(f) if "year" in f else str(f["start"])[:4] for f in folds]
        bottom = [0.0] * len(folds)
        for reason in REFUSAL_REASONS:
            counts = [float(f.get("refusals", {}).get(reason, 0)) for f in folds]
            if any(counts):
                left.bar(names, counts, bottom=bottom, label=reason)
                bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        left.set_title("Refused signals by reason (policy arm)", fontsize=10)
        if any(bottom):
            left.legend(fontsize=7)
        coverage = [float(f["coverage"]) if f.get("coverage") is not None else 0.0
                    for f in folds]
        kept = [float(f["kept_ratio"]) if f.get("kept_ratio") is not None else 0.0
                for f in folds]
        positions = range(len(folds))
        right.bar([p - 0.2 for p in positions], coverage, width=0.4, label="gate coverage")
        right.bar([p + 0.2 for p in positions], kept, width=0.4, label="trades kept")
        right.axhline(0.30, color="tab:red", linestyle=":", linewidth=1, label="kept ≥ 0.30")
        right.set_xticks(list(positions), names)
        right.set_ylim(0, max([1.0, *coverage, *kept]) * 1.05)
        right.set_title("Gate coverage and trades kept per fold", fontsize=10)
        right.legend(fontsize=7)
        plots["refusals"] = figure_png(fig)
    return plots


def evaluation_fragment(evaluation: Mapping[str, Any]) -> str:
    """The evaluation's tables and plots as an HTML fragment (no page around it)."""
    pooled = [
        ["profit factor, policy / ungated", evaluation.get("pf_ratio"),
         evaluation.get("pf_ratio_ci")],
        ["max drawdown, policy / ungated", evaluation.get("dd_ratio"),
         evaluation.get("dd_ratio_ci")],
        ["trades kept (policy / ungated)", evaluation.get("kept_ratio"), None],
        ["pooled signal AUC", evaluation.get("auc"), None],
        ["mean gate coverage", evaluation.get("coverage"), None],
        ["OOD false alarms (worst fold)", evaluation.get("ood_false_alarm_rate"), None],
    ]
    refusals = [[reason, count] for reason, count in evaluation.get("refusals", {}).items()]
    worst = evaluation.get("worst_fold") or {}
    images = "".join(f'<figure><img src="data:image/png;base64,{png}" alt="{name}"/></figure>'
                     for name, png in evaluation_plots(evaluation).items())
    note = evaluation.get("note")
    heading = (f"Walk-forward evaluation on {_cell(evaluation.get('timeframe'))} bars: ungated "
               "engine vs the policy, out of time on the same symbols" if note else
               "Walk-forward evaluation: ungated engine vs the policy on held-out symbols")
    warning = f'<p class="note"><strong>{_cell(note).capitalize()}.</strong></p>' if note else ""
    return f"""
<h2>{heading}</h2>
{warning}
{_table(fold_rows(evaluation), FOLD_HEADER)}
{_table(pooled, ["pooled", "value", "90% interval"])}
<p class="note">Worst fold: {_cell(worst.get("start"))[:10]} → {_cell(worst.get("end"))[:10]}
(profit-factor ratio {_cell(worst.get("pf_ratio"))}, kept {_cell(worst.get("kept_ratio"))}).</p>
{_table(refusals, ["refusal reason", "signals"])}
{images}
"""


def render_evaluation(payload: Mapping[str, Any]) -> str:
    """The standalone page of a JSON-safe evaluation payload (`write_evaluation`)."""
    run = payload.get("run", {})
    data = payload.get("data", {})
    notes = ", ".join(f"{key} {_cell(value)}" for key, value in (
        ("source", run.get("source")), ("symbols", data.get("symbols")),
        ("held-out symbols", data.get("held_out_symbols")), ("bars", data.get("bars")),
        ("seconds", run.get("seconds")),
    ))
    how = ("Each fold's models were trained on development symbols with bars up to the "
           "fold's training end; both arms ran the same engine over the held-out symbols.")
    if payload["evaluation"].get("note"):
        how = (f"Timeframe {_cell(data.get('timeframe'))}, {_cell(data.get('sessions'))} "
               "sessions. Each fold's models were trained on every bar up to the fold's "
               "training end (an embargo of bars before its first session); both arms ran "
               "the same engine over the fold's sessions of the same symbols. These folds "
               "are out of time only, not held-out symbols.")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tradewind policy evaluation</title>
<style>{TABLE_STYLE}</style></head><body>
<h1>Tradewind policy evaluation</h1>
<p class="note">{notes}. {how}</p>
{evaluation_fragment(payload["evaluation"])}
</body></html>
"""


def write_evaluation(payload: Mapping[str, Any], json_path: Path) -> tuple[Path, Path]:
    """Write `payload` (with its `evaluation` section) as JSON at `json_path` and its page
    next to it (same name, `.html`); returns both paths."""
    check_evaluation(payload["evaluation"])
    json_path.parent.mkdir(parents=True, exist_ok=True)
    safe = json_safe(payload, infinity_as_text=True)  # a profit factor without losses
    html_path = json_path.with_suffix(".html")
    for path, text in ((json_path, json.dumps(safe, indent=2)),
                       (html_path, render_evaluation(safe))):
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(text)
        scratch.replace(path)
    return json_path, html_path
