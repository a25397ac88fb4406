"""Evaluation plots logged as run artifacts. Built with matplotlib's object API
(`Figure` + Agg canvas), so nothing touches pyplot's global state or needs a display."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _figure(width: float = 6.0, height: float = 4.5) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def feature_importance(names: Sequence[str], importance: np.ndarray, top: int = 25) -> Figure:
    order = np.argsort(importance)[::-1][:top][::-1]
    figure = _figure(7, max(3.0, 0.25 * len(order) + 1))
    axes = figure.add_subplot()
    axes.barh([names[i] for i in order], importance[order], color="#3b6ea5")
    axes.set_xlabel("importance")
    axes.set_title("Feature importance")
    figure.tight_layout()
    return figure


def roc_and_calibration(won: np.ndarray, probability: np.ndarray) -> Figure:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import roc_curve

    figure = _figure(10, 4.5)
    roc_axes, cal_axes = figure.subplots(1, 2)
    if len(np.unique(won)) == 2:
        fpr, tpr, _ = roc_curve(won, probability)
        roc_axes.plot(fpr, tpr, color="#3b6ea5")
        prob_true, prob_pred = calibration_curve(won, probability, n_bins=10, strategy="quantile")
        cal_axes.plot(prob_pred, prob_true, marker="o", color="#3b6ea5")
    roc_axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    roc_axes.set_xlabel("false positive rate")
    roc_axes.set_ylabel("true positive rate")
    roc_axes.set_title("ROC (out of time)")
    cal_axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    cal_axes.set_xlabel("predicted win probability")
    cal_axes.set_ylabel("observed win rate")
    cal_axes.set_title("Calibration (out of time)")
    figure.tight_layout()
    return figure


def confusion(matrix: np.ndarray, labels: Sequence[str], title: str) -> Figure:
    figure = _figure(5.5, 4.5)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=30)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            axes.text(j, i, str(int(matrix[i, j])), ha="center", va="center")
    figure.colorbar(image)
    axes.set_title(title)
    figure.tight_layout()
    return figure


def predicted_vs_actual(
    actual: np.ndarray, predicted: np.ndarray, title: str,
    lower: np.ndarray | None = None, upper: np.ndarray | None = None,
) -> Figure:
    figure = _figure()
    axes = figure.add_subplot()
    if lower is not None and upper is not None:
        axes.vlines(actual, lower, upper, color="#c9d6e8", linewidth=1, label="p10–p90")
    axes.scatter(actual, predicted, s=6, alpha=0.5, color="#3b6ea5", label="prediction")
    finite = np.isfinite(actual) & np.isfinite(predicted)
    if finite.any():
        low = float(min(actual[finite].min(), predicted[finite].min()))
        high = float(max(actual[finite].max(), predicted[finite].max()))
        axes.plot([low, high], [low, high], linestyle="--", color="grey")
    axes.set_xlabel("actual")
    axes.set_ylabel("predicted")
    axes.set_title(title)
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure
