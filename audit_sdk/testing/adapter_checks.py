"""The adapter conformance check for plugin authors (beside ``check_detector``).

:func:`check_adapter` calls every capability an adapter declares, on a small synthetic world
(or the data given), and checks what the audit relies on: item lists it can score, text that
is the same for the same seed and does not depend on batch-mates (the generation cache keys
on single prompts), token offsets that point into the text, log-probabilities and embeddings
of the right shape, identity that is stable; and that a capability it does not declare fails
with :class:`~audit_sdk.errors.MissingCapabilityError` instead of half-working.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_args

import numpy as np
import pandas as pd

from audit_sdk.errors import AuditSDKError, MissingCapabilityError
from audit_sdk.interfaces import (
    Capability,
    GenerationParams,
    GeneratorAdapter,
    Tokenization,
    TokenScores,
)

if TYPE_CHECKING:
    from audit_sdk.data.tables import Dataset

__all__ = ["AdapterCheck", "check_adapter", "default_check_data", "default_check_prompts"]

_NAME = re.compile(r"^[a-z][a-z0-9_.\-]*$")
_RECOMMENDATION_COLUMNS = ("user_id", "rank", "item_id", "score")
_CAPABILITIES: frozenset[str] = frozenset(get_args(Capability))


@dataclass
class AdapterCheck:
    """What :func:`check_adapter` ran: the capabilities it checked and their outputs."""

    checked: list[Capability] = field(default_factory=list)
    recommendations: pd.DataFrame | None = None
    generations: list[str] | None = None


def default_check_data() -> Dataset:
    """The training split :func:`check_adapter` fits on by default: a small synthetic world."""
    from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
    from audit_sdk.splitting import holdout_split

    world = generate_world(SyntheticWorldParams(seed=0, n_users=80, n_artists=30))
    return holdout_split(world, seed=0).train


def default_check_prompts(train: Dataset, *, n: int = 3, recommendation: bool = True) -> list[str]:
    """Prompts of the kinds an audit sends: the default profile prompt of ``n - 1`` users
    (``n`` without ``recommendation``), and one recommendation prompt."""
    from audit_sdk.profile_pipeline import profile_prompt_table, sample_profile_windows
    from audit_sdk.recommendation_prompts import catalog_unit, recommendation_prompt
    from audit_sdk.user_histories import history_order_for, user_histories

    table = profile_prompt_table(sample_profile_windows(train, windows=None), train.catalog)
    prompts = table["prompt"].head(max(1, n - 1 if recommendation else n)).tolist()
    if not recommendation:
        return prompts
    order = history_order_for(train.interactions)
    history = next(iter(user_histories(train.interactions, order=order).values()))[:8]
    titles = train.catalog.frame["title"]
    prompts.append(
        recommendation_prompt(
            [titles.get(i, i) for i in history], unit=catalog_unit(train.catalog), order=order
        )
    )
    return prompts


def _recommend_problems(recs: Any, users: Sequence[str], catalog: set[str], k: int) -> list[str]:
    if not isinstance(recs, pd.DataFrame):
        return [f"recommend returned {type(recs).__name__}, not a pandas DataFrame"]
    missing = [c for c in _RECOMMENDATION_COLUMNS if c not in recs.columns]
    if missing:
        return [f"recommend's frame lacks the columns {missing}"]
    problems = []
    if recs.empty:
        problems.append("recommend returned no rows for users with a training history")
        return problems
    unknown_users = set(map(str, recs["user_id"])) - set(users)
    if unknown_users:
        problems.append(f"recommend returned {len(unknown_users)} users that were not asked for")
    unknown_items = set(map(str, recs["item_id"])) - catalog
    if unknown_items:
        problems.append(f"recommend returned {len(unknown_items)} items not in the catalog")
    if recs.duplicated(["user_id", "item_id"]).any():
        problems.append("recommend repeats an item within a user's list")
    ordered = recs.sort_values(["user_id", "rank"], kind="mergesort")
    expected = ordered.groupby("user_id", sort=False).cumcount().to_numpy() + 1
    if not np.array_equal(ordered["rank"].to_numpy(dtype=np.int64), expected):
        problems.append("ranks are not 1, 2, ... within each user's list")
    if (recs.groupby("user_id").size() > k).any():
        problems.append(f"a list is longer than k={k}")
    scores = pd.to_numeric(ordered["score"], errors="coerce")
    if scores.isna().any():
        problems.append("scores are missing or not numbers")
    else:
        rising = ordered.assign(score=scores).groupby("user_id", sort=False)["score"].diff() > 1e-9
        if rising.any():
            problems.append("a score rises with rank (rank 1 must score highest)")
    return problems


def _generate_problems(
    adapter: GeneratorAdapter, prompts: list[str], params: GenerationParams
) -> tuple[list[str], list[str] | None]:
    first = adapter.generate(prompts, params=params)
    if not isinstance(first, list) or len(first) != len(prompts):
        return [f"generate returned {len(first)} texts for {len(prompts)} prompts"], None
    if not all(isinstance(t, str) for t in first):
        return ["generate must return a list of str"], None
    problems = []
    if adapter.generate(prompts, params=params) != first:
        problems.append(f"generate differs between two calls with the same seed {params.seed}")
    alone = adapter.generate(prompts[:1], params=params)
    if alone != first[:1]:
        problems.append(
            "a prompt's text depends on the other prompts of its batch (the generation cache "
            "stores prompts one by one); derive each prompt's randomness from the prompt and "
            "the seed"
        )
    if adapter.generate([], params=params) != []:
        problems.append("generate([]) must return []")
    return problems, first


def _score_problems(adapter: GeneratorAdapter, prompts: list[str]) -> list[str]:
    continuations = [" rock", " and then"][: len(prompts)] or [" rock"]
    chosen = prompts[: len(continuations)]
    scores = adapter.score(chosen, continuations)
    if len(scores) != len(chosen) or not all(isinstance(s, TokenScores) for s in scores):
        return ["score must return one TokenScores per (prompt, continuation)"]
    problems = []
    for index, s in enumerate(scores):
        if len(s.token_ids) != len(s.logprobs) or not s.token_ids:
            problems.append(f"score {index}: token_ids and logprobs differ in length or are empty")
        elif not all(math.isfinite(v) and v <= 1e-6 for v in s.logprobs):
            problems.append(f"score {index}: log-probabilities must be finite and <= 0")
    if [s.logprobs for s in adapter.score(chosen, continuations)] != [s.logprobs for s in scores]:
        problems.append("score differs between two identical calls")
    try:
        adapter.score(chosen, [])
        problems.append("score accepted fewer continuations than prompts")
    except AuditSDKError:
        pass
    return problems


def _tokenize_problems(adapter: GeneratorAdapter, texts: list[str]) -> list[str]:
    texts = [*texts, "Café — Ünïcode, 東京 and emoji 🎵"]
    result = adapter.tokenize(texts)
    if len(result) != len(texts) or not all(isinstance(t, Tokenization) for t in result):
        return ["tokenize must return one Tokenization per text"]
    problems = []
    for index, (text, tok) in enumerate(zip(texts, result, strict=True)):
        if not tok.token_ids:
            problems.append(f"tokenize {index}: no tokens")
        if tok.offsets and len(tok.offsets) != len(tok.token_ids):
            problems.append(
                f"tokenize {index}: {len(tok.offsets)} offsets for {len(tok.token_ids)} ids"
            )
            continue
        last = 0
        for start, end in tok.offsets:
            if (start, end) == (0, 0):
                continue  # a special token
            if not 0 <= start <= end <= len(text) or start < last:
                problems.append(
                    f"tokenize {index}: offset ({start}, {end}) outside or out of order"
                )
                break
            last = start
    return problems


def _embed_problems(adapter: GeneratorAdapter, texts: list[str]) -> list[str]:
    vectors = np.asarray(adapter.embed(texts))
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        return [f"embed returned shape {vectors.shape} for {len(texts)} texts; want (n, dim)"]
    problems = []
    if not np.isfinite(vectors).all():
        problems.append("embed returned non-finite values")
    if not np.array_equal(np.asarray(adapter.embed(texts)), vectors):
        problems.append("embed differs between two identical calls")
    return problems


def _replay_problems(adapter: GeneratorAdapter) -> list[str]:
    from audit_sdk.profile_pipeline import PROFILE_COLUMNS

    profiles = adapter.logged_profiles()
    if not isinstance(profiles, pd.DataFrame):
        return ["logged_profiles must return a DataFrame"]
    missing = [c for c in PROFILE_COLUMNS if c not in profiles.columns]
    return [f"logged_profiles lacks the columns {missing}"] if missing else []


def _undeclared_problems(
    adapter: GeneratorAdapter, missing: frozenset[str] | set[str]
) -> list[str]:
    calls: dict[str, Callable[[], object]] = {
        "recommend": lambda: adapter.recommend(["u"], k=1),
        "generate": lambda: adapter.generate(["x"], params=GenerationParams()),
        "score": lambda: adapter.score(["x"], [" y"]),
        "tokenize": lambda: adapter.tokenize(["x"]),
        "embed": lambda: adapter.embed(["x"]),
        "replay": adapter.logged_profiles,
    }
    problems = []
    for capability in sorted(missing):
        try:
            calls[capability]()
        except MissingCapabilityError:
            continue
        except Exception as exc:
            problems.append(
                f"{capability!r} is not declared, but calling it raised {type(exc).__name__} "
                "instead of MissingCapabilityError"
            )
            continue
        problems.append(f"{capability!r} is not declared, but calling it worked: declare it")
    return problems


def check_adapter(
    adapter: GeneratorAdapter,
    train: Dataset | None = None,
    *,
    prompts: Sequence[str] | None = None,
    k: int = 5,
    n_users: int = 12,
    params: GenerationParams | None = None,
) -> AdapterCheck:
    """Call every capability ``adapter`` declares and check the contract:

    * a valid ``name``, known ``capabilities``; ``fingerprint()`` a stable non-empty string
      and ``describe()`` JSON-serialisable, both after ``fit``;
    * ``recommend``: after ``fit(train)``, at most ``k`` catalog items per asked user with
      columns ``user_id, rank, item_id, score``, ranks 1, 2, ..., no repeats, scores not rising
      with rank, and the same lists when asked again;
    * ``generate``: one ``str`` per prompt, the same texts for the same seed, a prompt's text
      independent of its batch-mates, ``[]`` for no prompts;
    * ``score``: one :class:`TokenScores` per pair, finite log-probabilities <= 0, the same on
      a second call, an error for mismatched lengths;
    * ``tokenize``: offsets (one per token, special tokens ``(0, 0)``) inside the text and in
      order, Unicode included;
    * ``embed``: an ``(n, dim)`` finite array, the same on a second call;
    * ``replay``: logged profiles with the profile columns;
    * a capability not declared raises :class:`~audit_sdk.errors.MissingCapabilityError`.

    :param train: the training split the adapter is fitted on (default: a small synthetic
        world); prompts are built from it unless ``prompts`` is given.
    :raises AssertionError: listing every problem found.
    """
    train = train if train is not None else default_check_data()
    params = params or GenerationParams(max_new_tokens=12, seed=3)
    problems: list[str] = []
    name = getattr(adapter, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(f"`name` must be lowercase letters, digits, '_', '.' or '-' (got {name!r})")
    unknown = set(adapter.capabilities) - _CAPABILITIES
    if unknown:
        problems.append(f"unknown capabilities {sorted(unknown)}; known: {sorted(_CAPABILITIES)}")
    result = AdapterCheck()
    adapter.fit(train)
    fingerprint = adapter.fingerprint()
    if not isinstance(fingerprint, str) or not fingerprint:
        problems.append("fingerprint() must be a non-empty str")
    elif adapter.fingerprint() != fingerprint:
        problems.append("fingerprint() changes between two calls")
    try:
        json.dumps(adapter.describe())
    except (TypeError, ValueError) as exc:
        problems.append(f"describe() is not JSON-serialisable ({exc})")
    declared = {c for c in _CAPABILITIES if adapter.supports(c)}  # type: ignore[arg-type]
    text_prompts = list(prompts) if prompts is not None else default_check_prompts(train)
    for capability in sorted(declared):
        if capability == "recommend":
            users = sorted(map(str, train.interactions.frame["user_id"].unique()))[:n_users]
            recs = adapter.recommend(users, k=k)
            catalog = set(map(str, train.catalog.frame.index))
            found = _recommend_problems(recs, users, catalog, k)
            if not found and not adapter.recommend(users, k=k).equals(recs):
                found.append("recommend differs between two identical calls")
            problems += found
            result.recommendations = recs
        elif capability == "generate":
            found, texts = _generate_problems(adapter, text_prompts, params)
            problems += found
            result.generations = texts
        elif capability == "score":
            problems += _score_problems(adapter, text_prompts)
        elif capability == "tokenize":
            problems += _tokenize_problems(adapter, text_prompts)
        elif capability == "embed":
            problems += _embed_problems(adapter, text_prompts)
        elif capability == "replay":
            problems += _replay_problems(adapter)
        result.checked.append(capability)  # type: ignore[arg-type]
    problems += _undeclared_problems(adapter, _CAPABILITIES - declared)
    if problems:
        raise AssertionError(
            f"adapter {name!r} fails the adapter contract:\n- " + "\n- ".join(problems)
        )
    return result
