import base64

import numpy as np
import pytest

from ml_assets.learn.model_card import card_markdown, card_summary, metrics_table
from ml_assets.learn.plots import REGRESSION_PLOTS, regression_plots
from ml_assets_tests.conftest import DIABETES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METRICS = DIABETES.task.metrics


def test_metrics_table_shows_intervals_and_compares_with_the_champion_and_a_constant():
    table = metrics_table(
        METRICS,
        {
            "metrics": {"mse": 2888.514, "rmse": 53.74494, "mae": 42.79409467959994, "r2": 0.4701},
            "intervals": {"mse": {"value": 2888.514, "low": 2158.114, "high": 3715.74}},
            "confidence": 0.95,
            "champion_metrics": {"mse": 2897.241, "rmse": 53.82602, "mae": 43.0, "r2": 0.45},
            "champion_version": "v1",
            "baseline_metrics": {"mse": 5361.533, "r2": -0.0045},
        },
    )
    lines = table.splitlines()
    assert "| 95 % interval | previous champion (v1) |" in lines[0]
    assert lines[0].endswith("| constant answer |")
    cells = {line.split("|")[1].strip(): line.split("|")[2:7] for line in lines[2:]}
    assert cells["MSE"] == [
        " 2888.51 ",
        " 2158.11 to 3715.74 ",
        " 2897.24 ",
        " −8.73 ",
        " 5361.53 ",
    ]
    assert cells["MAE"] == [" 42.79 ", "  ", " 43 ", " −0.2059 ", "  "]
    assert cells["R²"][3:] == [" +0.0201 ", " -0.0045 "]


@pytest.mark.parametrize(
    ("champion", "said"),
    [
        ({"mse": 2897.241}, "MSE 2888.51, −8.73 vs the previous version, 353 training rows"),
        ({"mse": 2880.0}, "MSE 2888.51, +8.51 vs the previous version, 353 training rows"),
        (None, "MSE 2888.51, the first version, 353 training rows"),
    ],
)
def test_the_summary_is_one_readable_line(champion, said):
    card = {"metrics": {"mse": 2888.514}, "champion_metrics": champion, "training_rows": 353}
    assert card_summary(card, METRICS["mse"]) == said
    assert card_summary(card, METRICS["mse"], compared=False) == "MSE 2888.51, 353 training rows"


def test_metrics_table_without_a_champion():
    card = {"metrics": {"mse": 1.0, "rmse": 1.0, "mae": 1.0, "r2": 0.5}, "champion_metrics": None}
    table = metrics_table(METRICS, card)  # a card from before intervals: blank cells
    assert "| interval | previous champion (none)" in table
    assert table.splitlines()[2].endswith("|  |  |  |  |")


def test_plots_are_png_images():
    rng = np.random.default_rng(0)
    actual = rng.normal(150, 70, 89)
    plots = regression_plots(actual, actual + rng.normal(0, 50, 89))
    assert tuple(plots) == REGRESSION_PLOTS
    assert all(data.startswith(PNG_MAGIC) and len(data) > 5000 for data in plots.values())


def test_card_markdown_embeds_the_plots():
    card = {
        "version": "v2",
        "estimator": "LinearRegression",
        "created_at": "2026-11-24T00:00:00+00:00",
        "training_rows": 353,
        "holdout_rows": 89,
        "data_fingerprint": "f" * 64,
        "metrics": {"mse": 2900.0, "rmse": 53.9, "mae": 43.0, "r2": 0.45},
        "champion_metrics": None,
        "champion_version": None,
    }
    markdown = card_markdown(card, {"residuals.png": PNG_MAGIC + b"rest"}, METRICS)
    assert "`v2`" in markdown and "353 rows" in markdown
    encoded = base64.b64encode(PNG_MAGIC + b"rest").decode()
    assert f"![residuals.png](data:image/png;base64,{encoded})" in markdown
