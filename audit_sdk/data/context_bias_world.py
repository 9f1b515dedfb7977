"""A seeded world in which supervised fine-tuning learns context bias (for GDRT, issue 12).

Artist-level listening histories (one item per artist, like HetRec Last.fm) with two kinds of
targets, planted and recorded:

* **hits**: ``n_hits`` globally popular artists with Zipf popularity ``rank ** -hit_exponent``.
  Which hit comes next is predictable from the task text alone (the model's prior after
  "Recommend the next artist..."), whatever the history says;
* **niche artists**: ``niche_per_cluster`` artists for each of ``n_clusters`` taste clusters;
  a user discovers only their own cluster's niche artists, so which one comes next is
  predictable only from the history (the cluster its earlier niche artists reveal).

Each user discovers ``items_per_user`` distinct artists in time order; discovery ``j`` (of
``n``) is a not-yet-seen hit with probability ``hit_share_start + (hit_share_end -
hit_share_start) * j / (n - 1)`` (mainstream first, niche later), else a not-yet-seen niche
artist of the user's cluster. So training targets are mostly hits while the latest
discoveries, which a time split holds out, are mostly niche: a model trained on the
training split that leans on the task text ranks unseen hits above the niche artists the
history points to. Optionally (``pair_share``) a hit is immediately followed by its
"companion" artist, a target the answer's own prefix (the hit before it) predicts.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users
from audit_sdk.hookspecs import RegisterDatasetLoader, hookimpl
from audit_sdk.interfaces import DatasetLoader, PluginParams

__all__ = ["ContextBiasWorldLoader", "ContextBiasWorldParams", "generate_context_bias_world"]


class ContextBiasWorldParams(PluginParams):
    seed: int = Field(0, description="the world's seed")
    n_users: int = Field(240, ge=10)
    n_clusters: int = Field(8, ge=2, description="taste clusters (each with niche artists)")
    niche_per_cluster: int = Field(14, ge=2)
    n_hits: int = Field(40, ge=2, description="globally popular artists")
    hit_exponent: float = Field(1.0, ge=0.0, description="Zipf exponent of hit popularity")
    items_per_user: int = Field(20, ge=6, description="distinct artists each user discovers")
    hit_share_start: float = Field(0.85, ge=0.0, le=1.0)
    hit_share_end: float = Field(0.15, ge=0.0, le=1.0)
    pair_share: float = Field(
        0.0, ge=0.0, le=1.0, description="share of hits followed by their companion artist"
    )


def _titles(params: ContextBiasWorldParams) -> tuple[list[str], list[str], list[str]]:
    hits = [f"Star {i:02d}" for i in range(params.n_hits)]
    companions = [f"Star {i:02d} Crew" for i in range(params.n_hits)]
    niche = [
        f"Band {chr(65 + c % 26)}{c // 26} {j:02d}"
        for c in range(params.n_clusters)
        for j in range(params.niche_per_cluster)
    ]
    return hits, companions, niche


def generate_context_bias_world(params: ContextBiasWorldParams | None = None) -> Dataset:
    """The world for ``params`` (the same numbers for a seed)."""
    params = params or ContextBiasWorldParams()
    rng = np.random.default_rng(params.seed)
    hits, companions, niche = _titles(params)
    n_niche = params.niche_per_cluster
    if params.items_per_user > params.n_hits + n_niche:
        raise ValueError("items_per_user exceeds the hits and niche artists a user can find")
    popularity = np.arange(1, params.n_hits + 1, dtype=float) ** -params.hit_exponent
    cluster = rng.integers(params.n_clusters, size=params.n_users)
    n = params.items_per_user
    hit_share = np.linspace(params.hit_share_start, params.hit_share_end, n)
    rows: list[tuple[str, str, int]] = []
    kinds: dict[str, str] = {}
    for user in range(params.n_users):
        uid = f"u{user:04d}"
        seen_hits = np.zeros(params.n_hits, dtype=bool)
        niche_order = rng.permutation(n_niche)
        next_niche = 0
        sequence: list[str] = []
        while len(sequence) < n:
            j = len(sequence)
            use_hit = (rng.random() < hit_share[j] and not seen_hits.all()) or next_niche >= n_niche
            if use_hit:
                weights = np.where(seen_hits, 0.0, popularity)
                h = int(rng.choice(params.n_hits, p=weights / weights.sum()))
                seen_hits[h] = True
                sequence.append(hits[h])
                if len(sequence) < n and rng.random() < params.pair_share:
                    sequence.append(companions[h])
            else:
                c = int(cluster[user])
                sequence.append(niche[c * n_niche + int(niche_order[next_niche])])
                next_niche += 1
        for position, title in enumerate(sequence[:n]):
            rows.append((uid, title, position))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "position"])
    start = pd.Timestamp("2024-01-01", tz="UTC").as_unit("ns")
    jitter = rng.random(len(frame))
    frame["timestamp"] = start + pd.to_timedelta(
        (frame["position"].to_numpy() * 86400 + jitter * 3600).astype(np.int64), unit="s"
    )
    frame["plays"] = 1.0
    frame = frame.drop(columns="position")
    for title in hits:
        kinds[title] = "hit"
    for title in companions:
        kinds[title] = "companion"
    for c in range(params.n_clusters):
        for j in range(n_niche):
            kinds[niche[c * n_niche + j]] = f"niche:{c}"
    items = sorted(set(frame["item_id"]))
    catalog = pd.DataFrame(
        {
            "title": items,
            "artist": items,
            "genres": [[kinds[i].split(":")[0]] for i in items],
            "country": ["US"] * len(items),
        },
        index=pd.Index(items, name="item_id"),
    )
    users = pd.DataFrame(
        {"cluster": [f"c{c}" for c in cluster]},
        index=pd.Index([f"u{u:04d}" for u in range(params.n_users)], name="user_id"),
    )
    planted: dict[str, Any] = {
        "hits": hits,
        "companions": companions,
        "item_kind": {i: kinds[i] for i in items},
        "user_cluster": dict(zip(users.index, users["cluster"], strict=True)),
    }
    return Dataset(
        name="context_bias",
        interactions=Interactions(frame.reset_index(drop=True)),
        catalog=Catalog(catalog),
        users=Users(users),
        metadata={
            "loader": "context_bias",
            "params": params.model_dump(mode="json"),
            "planted": planted,
        },
    )


class ContextBiasWorldLoader(DatasetLoader):
    """Hits predictable from the task text beside niche artists only the history predicts."""

    name: ClassVar[str] = "context_bias"
    description: ClassVar[str] = (
        "seeded world where supervised fine-tuning learns context bias (GDRT's test world)"
    )
    Params: ClassVar[type[PluginParams]] = ContextBiasWorldParams

    def load(self) -> Dataset:
        params = self.params
        assert isinstance(params, ContextBiasWorldParams)
        return generate_context_bias_world(params)


@hookimpl
def audit_sdk_register_dataset_loaders(register: RegisterDatasetLoader) -> None:
    register(ContextBiasWorldLoader)
