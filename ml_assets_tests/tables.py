"""Tables shaped like the exports teams have, shared by the tests: houses (a regression with
gaps), and bikes (a leak: the target is the sum of two columns)."""

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


def houses(rows: int = 400, seed: int = 1) -> pd.DataFrame:
    """A regression table: a price from an area (with gaps), rooms and a district."""
    rng = np.random.default_rng(seed)
    district = rng.choice(["north", "centre", "south"], size=rows)
    area = rng.uniform(30, 180, rows).round(1)
    rooms = np.clip((area / 30 + rng.normal(0, 0.7, rows)).round(), 1, None).astype(int)
    premium = pd.Series(district).map({"north": 0, "centre": 900, "south": -300}).to_numpy()
    price = (area * (2500 + premium) + rooms * 8000 + rng.normal(0, 20_000, rows)).round(-2)
    table = pd.DataFrame({"area_m2": area, "rooms": rooms, "district": district, "price": price})
    table.loc[rng.choice(rows, 12, replace=False), "area_m2"] = None
    return table
