"""The gate's statistics against statistics computed here independently: scikit-learn's metrics
on resampled rows, a bootstrap written with NumPy, McNemar's test by scipy's binomtest, and a
simulation of candidates as good as production."""

import dataclasses

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from ml_assets.learn.gate_statistics import (
    BETTER,
    NOT_WORSE,
    Interval,
    difference_sentence,
    mcnemar_p_value,
    measure,
    resample_weights,
    verdict,
)
from ml_assets.learn.resampling import ResampledModels
from ml_assets.learn.tasks import Classification, ClassOutputs, Regression
from ml_assets_tests.conftest import CANCER, DIABETES

REGRESSION = {
    "mse": mean_squared_error,
    "rmse": lambda y, p: np.sqrt(mean_squared_error(y, p)),
    "mae": mean_absolute_error,
    "r2": r2_score,
}


def with_gate(spec, **changes):
    return dataclasses.replace(spec, gate=dataclasses.replace(spec.gate, **changes))


def on_resamples(resampled, weights):
    return ResampledModels({"model": resampled})(weights)["model"]


def drawn_rows(weights):
    """The resample's rows, each repeated as often as drawn."""
    return np.repeat(np.arange(len(weights)), weights.astype(int))


def test_resampled_regression_metrics_are_scikit_learns_on_the_resampled_rows():
    rng = np.random.default_rng(3)
    target = rng.normal(150, 70, 120)
    predicted = target + rng.normal(5, 50, 120)
    [weights] = list(resample_weights(120, 7, seed=11))
    values = on_resamples(Regression().resampled(target, predicted, list(REGRESSION)), weights)
    for resample, row_weights in enumerate(weights):
        rows = drawn_rows(row_weights)
        for name, metric in REGRESSION.items():
            expected = metric(target[rows], predicted[rows])
            assert values[name][resample] == pytest.approx(expected, rel=1e-10), name


@pytest.mark.parametrize("classes", [("no", "yes"), ("b", "c", "a")])
def test_resampled_classification_metrics_are_scikit_learns_on_the_resampled_rows(classes):
    rng = np.random.default_rng(4)
    n = 150
    actual = rng.choice(classes, n)
    probabilities = rng.dirichlet(np.ones(len(classes)), n).round(2)  # ties for the AUC
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    predicted = np.array(classes)[probabilities.argmax(axis=1)]
    predicted[:7] = classes[0]  # a few answers that are not the likeliest class
    task = Classification(classes)
    names = list(task.metrics)
    [weights] = list(resample_weights(n, 6, seed=5))
    values = on_resamples(
        task.resampled(actual, ClassOutputs(predicted, probabilities), names), weights
    )
    by_name = sorted(range(len(classes)), key=classes.__getitem__)
    for resample, row_weights in enumerate(weights):
        rows = drawn_rows(row_weights)
        y, guess, p = actual[rows], predicted[rows], probabilities[rows][:, by_name]
        if len(classes) == 2:
            auc = roc_auc_score(y == "yes", p[:, 1])
        else:
            auc = roc_auc_score(y, p, multi_class="ovr", labels=sorted(classes))
        expected = {
            "accuracy": accuracy_score(y, guess),
            "balanced_accuracy": balanced_accuracy_score(y, guess),
            "f1_macro": f1_score(y, guess, average="macro"),
            "log_loss": log_loss(y, p, labels=sorted(classes)),
            "roc_auc": auc,
        }
        for name in names:
            assert values[name][resample] == pytest.approx(expected[name], rel=1e-10), name


def test_a_resample_missing_a_class_has_no_roc_auc():
    task = Classification(("no", "yes"))
    outputs = ClassOutputs(np.array(["no", "yes"]), np.array([[0.8, 0.2], [0.3, 0.7]]))
    only_first = np.array([[2.0, 0.0]])
    values = on_resamples(task.resampled(np.array(["no", "yes"]), outputs, ["roc_auc"]), only_first)
    assert np.isnan(values["roc_auc"][0])


def numpy_bootstrap(n, resamples, seed, statistic, confidence=0.95, order=None):
    """The percentile bootstrap as a textbook writes it: a loop over resamples, each drawing
    n rows with replacement (among the rows in `order`, when given)."""
    rows = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    if order is not None:
        rows = order[rows]
    values = np.array([statistic(drawn) for drawn in rows])
    tail = (1 - confidence) / 2
    return np.quantile(values, [tail, 1 - tail])


def test_the_intervals_are_a_paired_bootstrap_over_rows():
    rng = np.random.default_rng(8)
    n = 5_000  # several blocks of resamples
    target = rng.normal(150, 70, n)
    ours, theirs = target + rng.normal(0, 50, n), target + rng.normal(3, 52, n)
    constant = np.full(n, target.mean())
    spec = with_gate(DIABETES, bootstrap_resamples=500, confidence=0.9)
    outputs = {"candidate": ours, "production": theirs, "baseline": constant}
    scores = {name: Regression().scores(target, value) for name, value in outputs.items()}
    statistics = measure(spec, target, outputs, scores)

    def mse(predicted):
        return lambda rows: mean_squared_error(target[rows], predicted[rows])

    def paired(predicted, other):
        return lambda rows: mse(predicted)(rows) - mse(other)(rows)

    def r2(rows):
        return r2_score(target[rows], ours[rows])

    expected = {
        "versus_production": numpy_bootstrap(n, 500, 42, paired(ours, theirs), 0.9),
        "versus_baseline": numpy_bootstrap(n, 500, 42, paired(ours, constant), 0.9),
    }
    for name, (low, high) in expected.items():
        found = statistics[name]["mse"]
        assert (found["low"], found["high"]) == pytest.approx((low, high), rel=1e-9)
        assert found["value"] == pytest.approx(scores["candidate"]["mse"] - scores[name[7:]]["mse"])
    low, high = numpy_bootstrap(n, 500, 42, r2, 0.9)
    assert statistics["candidate"]["r2"]["low"] == pytest.approx(low, rel=1e-9)
    assert statistics["candidate"]["r2"]["high"] == pytest.approx(high, rel=1e-9)
    assert (statistics["confidence"], statistics["resamples"]) == (0.9, 500)
    again = measure(spec, target, outputs, scores)
    assert again == statistics  # seeded: a rerun gives the same intervals


def test_log_loss_and_mcnemar_are_compared_for_a_classification():
    rng = np.random.default_rng(9)
    n, classes = 300, ("benign", "malignant")
    actual = rng.choice(classes, n)
    truth = actual == "malignant"

    def outputs(noise):
        share = np.clip(np.where(truth, 0.7, 0.3) + rng.normal(0, noise, n), 0.01, 0.99)
        probabilities = np.column_stack([1 - share, share])
        return ClassOutputs(np.array(classes)[probabilities.argmax(axis=1)], probabilities)

    models = {"candidate": outputs(0.2), "production": outputs(0.3), "baseline": outputs(0.0)}
    scores = {name: CANCER.task.scores(actual, value) for name, value in models.items()}
    spec = with_gate(CANCER, bootstrap_resamples=300)
    statistics = measure(spec, actual, models, scores)
    assert set(statistics["versus_production"]) == {"accuracy", "log_loss", "mcnemar_p_value"}

    def losses(rows):
        def loss(name):
            return log_loss(actual[rows], models[name].probabilities[rows], labels=classes)

        return loss("candidate") - loss("production")

    # a classification's rows are drawn in the order of the candidate's score
    order = np.argsort(models["candidate"].probabilities[:, 1], kind="stable")
    low, high = numpy_bootstrap(n, 300, 42, losses, order=order)
    found = statistics["versus_production"]["log_loss"]
    assert (found["low"], found["high"]) == pytest.approx((low, high), rel=1e-9)
    right = {name: models[name].predicted == actual for name in models}
    only_ours = int((right["candidate"] & ~right["production"]).sum())
    only_theirs = int((~right["candidate"] & right["production"]).sum())
    expected = binomtest(only_ours, only_ours + only_theirs, 0.5).pvalue
    assert statistics["versus_production"]["mcnemar_p_value"] == pytest.approx(expected)


def test_mcnemar_without_disagreement_finds_nothing():
    right = np.array([True, False, True])
    assert mcnemar_p_value(right, right) == 1.0
    ours, theirs = np.array([True] * 10 + [False] * 2), np.array([False] * 10 + [True] * 2)
    assert mcnemar_p_value(ours, theirs) == pytest.approx(binomtest(10, 12, 0.5).pvalue)


MSE = Regression.metrics["mse"]
ACCURACY = Classification.metrics["accuracy"]


@pytest.mark.parametrize(
    ("metric", "interval", "allowed_worse", "promote_when", "passed", "said"),
    [
        (MSE, (-8.7, -41.2, 23.9), 0.0, NOT_WORSE, True, "no detectable difference"),
        (MSE, (-8.7, -41.2, 23.9), 0.0, BETTER, False, "not detectably better"),
        (MSE, (-60, -90, -30), 0.0, BETTER, True, "detectably better"),
        (MSE, (60, 30, 90), 0.0, NOT_WORSE, False, "detectably worse"),
        (MSE, (60, 30, 90), 40.0, NOT_WORSE, True, "detectably worse, within the allowed 40"),
        (MSE, (60, 45, 90), 40.0, NOT_WORSE, False, "worse beyond the allowed 40"),
        (MSE, (-60, -90, -30), -20.0, BETTER, True, "detectably better"),
        (MSE, (-60, -90, -10), -20.0, BETTER, False, "not detectably better by the required 20"),
        (MSE, (-5, -15, -1), -20.0, NOT_WORSE, False, "short of the required improvement"),
        # scores: worse is down
        (ACCURACY, (-0.05, -0.08, -0.02), 0.0, NOT_WORSE, False, "detectably worse"),
        (ACCURACY, (-0.05, -0.08, -0.02), 0.1, NOT_WORSE, True, "within the allowed 0.1"),
        (ACCURACY, (0.05, 0.02, 0.08), 0.0, BETTER, True, "detectably better"),
        (ACCURACY, (0.01, -0.02, 0.04), 0.0, NOT_WORSE, True, "no detectable difference"),
    ],
)
def test_the_verdict_reads_the_interval_as_promote_when_says(
    metric, interval, allowed_worse, promote_when, passed, said
):
    decided, conclusion = verdict(metric, Interval(*interval), allowed_worse, promote_when)
    assert decided is passed
    assert said in conclusion


def test_the_sentence_says_the_difference_and_its_interval():
    sentence = difference_sentence(MSE, Interval(-8.73, -41.2, 23.9), 0.95)
    assert sentence == "candidate MSE is 8.73 lower, 95 % interval −41.2 to +23.9"
    large = difference_sentence(MSE, Interval(376.99, -148.3, 873.8), 0.95)
    assert large == "candidate MSE is 376.99 higher, 95 % interval −148.30 to +873.80"
    other = difference_sentence(ACCURACY, Interval(0.02, 0.01, 0.03), 0.9, "the constant answer")
    assert other == (
        "candidate accuracy is 0.02 higher than the constant answer, 90 % interval +0.01 to +0.03"
    )
