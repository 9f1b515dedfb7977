"""Synthetic files in the shapes teams have, with planted truth, for the onboarding tests.

* :func:`write_profile_log`: a ratings-and-profiles log (one row per user x model x window) in
  the team's own column names, genre shares in a block of columns, a separate per-user table
  and a long-term shares table in percent. Generator ``gpt-x`` rates heavy metal listeners'
  profiles 1.0 lower (planted); ``llama-y`` has no effect.
* :func:`write_movielens_like`: a headerless MovieLens-100K-shaped dataset: tab-separated
  ratings, pipe-separated users (age, gender, occupation, zip) and latin-1 items with 19
  one-hot genre columns. Planted: men's picks follow the mainstream, women's ignore it, so a
  popularity recommender serves women worse (an NDCG gap by gender).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

GENRES = ("pop", "rock", "hip hop", "jazz", "metal", "classical")
PLANTED_METAL = {"gpt-x": -1.0, "llama-y": 0.0}


def write_profile_log(directory: Path, *, n_users: int = 400, seed: int = 0) -> dict[str, Path]:
    rng = np.random.default_rng([seed, 9])
    uid = [f"U{i:04d}" for i in range(n_users)]
    age = rng.integers(18, 70, n_users)
    country = rng.choice(["US", "GB", "BR"], n_users, p=[0.5, 0.3, 0.2])
    young = (40 - age) / 15
    slopes = np.linspace(1, -1, len(GENRES))
    fan = rng.random((n_users, len(GENRES))) < expit(np.outer(young, slopes) - 0.3)
    parts = []
    for model, effect in PLANTED_METAL.items():
        for window in ("30d", "1y"):
            shares = np.clip(np.where(fan, 0.4, 0.1) + 0.08 * rng.standard_normal(fan.shape), 0, 1)
            metal = shares[:, GENRES.index("metal")]
            heavy = metal > np.median(metal[metal > 0])
            noise = 0.7 * rng.standard_normal(n_users)
            rating = np.clip(np.round(4 + 0.5 * young + effect * heavy + noise, 1), 1, 7)
            part = pd.DataFrame(
                {
                    "uid": uid,
                    "llm": model,
                    "period": window,
                    "profile_text": "Mostly guitars, some late-night jazz.",
                    "score": rating,
                    "latency_ms": rng.integers(100, 900, n_users).astype(str),
                }
            )
            for j, genre in enumerate(GENRES):
                part[genre] = shares[:, j].round(4)
            part["cty_US"] = rng.random(n_users).round(3)
            parts.append(part)
    paths = {
        "log": directory / "profiles_log.csv",
        "users": directory / "users.csv",
        "longterm": directory / "longterm.csv",
    }
    pd.concat(parts, ignore_index=True).to_csv(paths["log"], index=False)
    pd.DataFrame({"uid": uid, "age": age, "country": country}).to_csv(paths["users"], index=False)
    longterm = {
        f"lt_{g}": (100 * np.where(fan[:, j], 0.3, 0.05)).round(1) for j, g in enumerate(GENRES)
    }
    pd.DataFrame({"uid": uid, **longterm}).to_csv(paths["longterm"], index=False)
    return paths


ML_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


def write_movielens_like(
    directory: Path, *, n_users: int = 300, n_items: int = 400, seed: int = 0
) -> dict[str, Path]:
    rng = np.random.default_rng([seed, 100])
    gender = rng.choice(["M", "F"], n_users, p=[0.6, 0.4])
    age = rng.integers(7, 74, n_users)
    occupation = rng.choice(["student", "engineer", "writer", "none"], n_users)
    zips = [f"{z:05d}" for z in rng.integers(1000, 99999, n_users)]
    popularity = np.r_[np.linspace(3, 1, n_items // 2), np.linspace(1, 0.2, n_items - n_items // 2)]
    rows = []
    for user in range(n_users):
        # men follow the mainstream strongly, women's picks ignore it
        weights = popularity**3 if gender[user] == "M" else np.ones(n_items)
        weights = weights / weights.sum()
        items = rng.choice(n_items, size=40, replace=False, p=weights)
        for k, item in enumerate(items):
            rows.append((user + 1, item + 1, int(rng.integers(1, 6)), 874965758 + 1000 * k))
    paths = {
        "interactions": directory / "u.data",
        "users": directory / "u.user",
        "catalog": directory / "u.item",
    }
    data = "\n".join("\t".join(map(str, r)) for r in rows) + "\n"
    paths["interactions"].write_text(data, encoding="ascii")
    users = [f"{u + 1}|{age[u]}|{gender[u]}|{occupation[u]}|{zips[u]}" for u in range(n_users)]
    paths["users"].write_text("\n".join(users) + "\n", encoding="ascii")
    lines = []
    for item in range(n_items):
        flags = np.zeros(len(ML_GENRES), dtype=int)
        flags[1 + item % (len(ML_GENRES) - 1)] = 1
        if item % 7 == 0:
            flags[ML_GENRES.index("Drama")] = 1
        title = f"Caf\u00e9 {item + 1} (1995)"  # latin-1 bytes, not UTF-8
        fields = [str(item + 1), title, "01-Jan-1995", "", "http://x/" + str(item + 1)]
        lines.append("|".join(fields + [str(f) for f in flags]))
    paths["catalog"].write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return paths
