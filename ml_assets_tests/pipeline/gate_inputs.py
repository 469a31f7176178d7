"""model_metrics' value as the gate checks read it, written by hand for the checks' own tests:
point metrics and the intervals the bootstrap would have given."""


def interval(value, low, high):
    return {"value": value, "low": low, "high": high}


def measured(
    spec,
    candidate: dict,
    production: dict | None = None,
    versus: dict | None = None,
    baseline: dict | None = None,
    versus_baseline: dict | None = None,
    rows: int = 89,
    confidence: float = 0.95,
) -> dict:
    """The value of model_metrics: `versus` maps a metric to (low, high) of candidate −
    production, `versus_baseline` the same against the constant answer; any compared metric
    not given is a tie well within noise."""
    metric = spec.gate.metric.name
    compared = [metric, *spec.task.guard_metrics]
    baseline = baseline or {metric: candidate[metric]}

    def differences(other: dict, given: dict | None, names) -> dict:
        given = given or {}
        return {
            name: interval(candidate[name] - other[name], *given.get(name, (-1e9, 1e9)))
            for name in names
        }

    return {
        "candidate": candidate,
        "production": production,
        "baseline": baseline,
        "production_version": None if production is None else "v1",
        "holdout_rows": rows,
        "statistics": {
            "confidence": confidence,
            "resamples": 2000,
            "rows": rows,
            "candidate": {
                name: interval(value, value * 0.9, value * 1.1) for name, value in candidate.items()
            },
            "versus_production": None
            if production is None
            else differences(production, versus, compared),
            "versus_baseline": differences(baseline, versus_baseline, [metric]),
        },
    }
