"""Tables with a leak, as public exports have them, shared by the tests of the load-time
warnings, of new-model and of the check on a score too good to be true."""

import numpy as np
import pandas as pd


def bikes(rows: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Hourly rentals like a bike-share export: the count is casual + registered riders."""
    rng = np.random.default_rng(seed)
    hour = rng.integers(0, 24, rows)
    temp = rng.uniform(0, 1, rows).round(3)
    rush = np.isin(hour, [8, 17, 18])
    registered = rng.poisson(40 + 150 * rush + 60 * temp)
    casual = rng.poisson(5 + 40 * temp)
    return pd.DataFrame(
        {"hr": hour, "temp": temp, "casual": casual, "registered": registered,
         "cnt": casual + registered}
    )  # fmt: skip
