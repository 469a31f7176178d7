import base64

import numpy as np

from ml_assets.model_card import REGRESSION_PLOTS, card_markdown, metrics_table, regression_plots
from ml_assets_tests.conftest import DIABETES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METRICS = DIABETES.task.metrics


def test_metrics_table_compares_with_the_champion():
    table = metrics_table(
        METRICS,
        {"mse": 2800.0, "rmse": 52.9, "mae": 42.0, "r2": 0.47},
        {"mse": 2900.0, "rmse": 53.9, "mae": 43.0, "r2": 0.45},
        "v1",
    )
    lines = table.splitlines()
    assert "previous champion (v1)" in lines[0]
    assert lines[2].split("|")[1:5] == [" MSE ", " 2800 ", " 2900 ", " -100 "]


def test_metrics_table_without_a_champion():
    table = metrics_table(METRICS, {"mse": 1.0, "rmse": 1.0, "mae": 1.0, "r2": 0.5}, None, None)
    assert "previous champion (none)" in table
    assert table.splitlines()[2].endswith("|  |  |")


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
