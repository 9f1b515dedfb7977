"""The personalization detector beyond prompting: recommenders ranked directly (``score``:
log-probability of the query item given the user's earlier history; ``recommend``: the query
item's position in a refit recommender's ranking, since the baselines exclude consumed items;
neither: reported as unrankable), the per-method answer-token cap, and the tau table the HTML
report shows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from audit_sdk.adapters.baseline_recommenders import ItemKNNRecommender, PopularityRecommender
from audit_sdk.adapters.callable_adapter import CallableAdapter, CallableParams
from audit_sdk.plugins.detectors._personalization_groups import GroupSettings, build_groups
from audit_sdk.plugins.detectors._personalization_methods import answer_budget, run_llm_method
from audit_sdk.plugins.detectors._personalization_prompts import member_contexts
from audit_sdk.plugins.detectors._personalization_recommenders import (
    history_prompts,
    rank_with_recommender,
)

from audit_sdk.interfaces import GenerationParams, GeneratorAdapter, Tokenization
from audit_sdk.services import GenerationService
from audit_sdk.testing import make_host
from tests import personalization_worlds as worlds
from tests.personalization_worlds import install_truth, rating_world

WORLD = "tests.personalization_worlds"


def _groups(dataset, seed=0, per_size=25):
    return build_groups(
        dataset.interactions.frame,
        GroupSettings(max_groups_per_size=per_size),
        np.random.default_rng(seed),
    )


def _tau(run):
    from audit_sdk.plugins.detectors._personalization_metrics import group_taus

    return group_taus(run.predictions).frame["tau"].mean()


def test_a_scoring_recommender_is_ranked_by_its_log_probability_of_the_query_item():
    dataset = rating_world(11, n_users=120)
    groups = _groups(dataset)
    prompts, continuations = history_prompts(groups, dataset)
    members = groups.members.reset_index(drop=True)
    titles = dataset.catalog.frame["title"]
    frame = dataset.interactions.frame
    for row in members.sample(10, random_state=0).itertuples():
        prompt = prompts[row.Index]
        before = frame[(frame["user_id"] == row.user_id) & (frame["timestamp"] < row.timestamp)]
        shown = prompt.splitlines()[2:]  # after the header's two lines
        assert set(shown) <= set(titles[before["item_id"]])  # nothing at or after the query
        assert titles[row.item_id] not in shown
        assert continuations[row.Index] == f"{titles[row.item_id]}\n"
    worlds.HISTORIES.clear()
    worlds.RELATIVE.clear()
    for row, prompt in zip(members.itertuples(), prompts, strict=True):
        worlds.HISTORIES[prompt] = row.user_id
        worlds.RELATIVE[(row.user_id, titles[row.item_id])] = row.relative
    adapter = CallableAdapter(
        CallableParams(target=f"{WORLD}:oracle_score", capabilities=["score"])
    )
    run = rank_with_recommender(adapter, groups, dataset, label="affinity")
    assert run.counts["ranked_by_score"] == len(members)
    assert _tau(run) == pytest.approx(1.0)


def test_recommenders_that_only_recommend_are_refit_without_the_query_ratings():
    dataset = rating_world(12, n_users=150)
    groups = _groups(dataset)
    popularity = PopularityRecommender()
    popularity.fit(dataset)  # the audit's own instance: consumed items, query items included
    fitted = popularity.matrix_.copy()
    run = rank_with_recommender(popularity, groups, dataset, label="affinity@popularity")
    assert run.counts["ranked_by_recommend"] == len(groups.members)
    assert run.counts["missing_scores"] == 0
    # every member's query item is ranked (a position, not "not recommended")
    predicted = run.predictions["predicted"]
    assert (predicted <= 0).all() and (predicted > -1).all()  # a share of the list, found
    assert (popularity.matrix_ != fitted).nnz == 0  # the audit's instance is left alone
    knn = rank_with_recommender(ItemKNNRecommender(), groups, dataset, label="knn")
    assert np.isfinite(knn.predictions["predicted"]).all()


def test_an_adapter_that_can_neither_score_nor_recommend_is_reported_unrankable():
    dataset = rating_world(13, n_users=80)
    adapter = CallableAdapter(CallableParams(target=f"{WORLD}:garbage_generate"))
    run = rank_with_recommender(adapter, _groups(dataset), dataset, label="affinity@judge")
    assert run.unrankable and "neither score" in run.unrankable
    assert run.predictions["predicted"].isna().all()


class _RecordingModel(GeneratorAdapter):
    """A real adapter answering every prompt with a long non-JSON text, cut at the requested
    token count (one token per character), and tokenizing one token per character."""

    name = "recording"
    capabilities = frozenset({"generate", "tokenize"})

    def __init__(self) -> None:
        super().__init__()
        self.max_new_tokens: list[int] = []

    def generate(self, prompts, *, params: GenerationParams) -> list[str]:
        self.max_new_tokens.append(params.max_new_tokens)
        return ["x" * params.max_new_tokens for _ in prompts]

    def tokenize(self, texts):
        return [Tokenization(list(range(len(t)))) for t in texts]


def test_generation_is_capped_to_the_longest_valid_answer_and_malformed_answers_are_counted():
    dataset = rating_world(14, n_users=80)
    groups = _groups(dataset, per_size=10)
    model = _RecordingModel()
    assert answer_budget("pointwise", 2, model) == len('{"rating": 4.5}') + 4
    assert answer_budget("listwise", 4, model) == len('{"ranking": ["A", "B", "C", "D"]}') + 4
    contexts = member_contexts(groups.members, groups.timelines, dataset.catalog.frame, k=4)
    service = GenerationService(cache_path=None)
    for method in ("pointwise", "pairwise", "listwise"):
        model.max_new_tokens.clear()
        run = run_llm_method(
            method,
            groups,
            contexts,
            service=service,
            adapter=model,
            params=GenerationParams(max_new_tokens=64),
            label="m",
        )
        assert max(model.max_new_tokens) < 64
        assert run.counts["malformed"] == run.counts["prompts"] > 0
        assert run.counts["unique_prompts"] <= run.counts["prompts"]
    # without a tokenizer: two characters a token, never above max_new_tokens
    plain = CallableAdapter(CallableParams(target=f"{WORLD}:garbage_generate"))
    assert answer_budget("pairwise", 2, plain) == len('{"preferred": "A"}') // 2 + 4


def test_a_whole_audit_ranks_baselines_directly_and_the_html_report_has_the_tau_table(tmp_path):
    from audit_sdk.config import parse_config
    from audit_sdk.runner import AuditRunner

    dataset = rating_world(10, n_users=100)
    install_truth(dataset)
    dataset.interactions.frame.to_csv(tmp_path / "ratings.csv", index=False)
    catalog = dataset.catalog.frame.drop(columns=["genres"]).reset_index()
    catalog.to_csv(tmp_path / "items.csv", index=False)
    config = parse_config(
        {
            "dataset": {
                "loader": "tabular",
                "params": {
                    "interactions": str(tmp_path / "ratings.csv"),
                    "catalog": str(tmp_path / "items.csv"),
                },
            },
            "subject": {"adapter": "popularity"},
            "baselines": [],
            "models": {
                "garbage": {
                    "adapter": "callable",
                    "params": {"target": f"{WORLD}:garbage_generate"},
                },
                "item_knn": {"adapter": "item_knn"},
            },
            "stats": {"bootstrap_resamples": 100},
            "outputs": {"formats": ["json", "html"]},
            "detectors": [
                {
                    "name": "personalization",
                    "params": {
                        "generators": ["garbage"],
                        "recommenders": ["item_knn", "garbage"],
                        "max_groups_per_size": 15,
                        "scorers": ["random"],
                    },
                }
            ],
        }
    )
    result = AuditRunner(config, host=make_host(), quiet=True, out_dir=tmp_path / "out").run()
    findings = {f.metric: f for f in result.report.findings if f.detector == "personalization"}
    for name in ("affinity", "affinity@item_knn"):  # the subject (popularity) and a role
        finding = findings[f"kendall_tau:{name}"]
        assert finding.estimate is not None and finding.ci_low <= finding.ci_high
        assert finding.details["kind"] == "recommender"
    assert findings["kendall_tau:affinity@garbage"].status == "skipped"
    assert findings["kendall_tau:pointwise@garbage"].status == "warn"
    table = findings["groups"].details["tau_table"]
    rows = {row["method"]: row for row in table["rows"]}
    assert rows["pointwise@garbage"]["overall"] is None
    assert rows["pointwise@garbage"]["malformed"] == rows["pointwise@garbage"]["prompts"] > 0
    assert "neither score" in rows["affinity@garbage"]["note"]
    assert set(rows["affinity"]["by_difficulty"]) == {"easy", "medium", "hard"}
    html = next((tmp_path / "out").rglob("report.html")).read_text()
    assert "Personalization: Kendall tau per method and difficulty" in html
    for method in ("pointwise@garbage", "affinity@item_knn", "random"):
        assert f'<td class="mono">{method}</td>' in html
    assert rows["random"]["overall"]["estimate"] is not None


def test_prompts_can_show_each_users_profile_from_the_profile_pipeline():
    import dataclasses

    from audit_sdk.plugins.detectors._personalization_prompts import (
        PROFILE_CHARS,
        pointwise_prompt,
        with_profiles,
    )
    from audit_sdk.plugins.detectors.personalization import (
        PersonalizationDetector,
        PersonalizationParams,
    )

    from audit_sdk.config import AuditConfig
    from audit_sdk.execution import LocalExecutor
    from audit_sdk.interfaces import AuditContext, SubjectOutputs
    from audit_sdk.services import AuditServices, ModelHandle, ModelRoles

    dataset = rating_world(15, n_users=100)
    install_truth(dataset)
    users = dataset.users.frame.index
    profiles = pd.DataFrame(
        {
            "user_id": [*users, users[0]],
            "window": ["w1"] * len(users) + ["w2"],
            "text": [f"likes album {u}" for u in users] + ["x" * 1000],
        }
    )
    groups = _groups(dataset, per_size=5)
    contexts, _ = member_contexts(groups.members, groups.timelines, dataset.catalog.frame, k=4)
    shown, found = with_profiles(contexts, profiles)
    assert found == len(contexts)
    member = next(m for m in shown.values() if m.user_id != users[0])
    assert f"taste profile: likes album {member.user_id}" in pointwise_prompt(member, "i1", "x")
    assert all(len(m.profile or "") <= PROFILE_CHARS for m in shown.values())  # last row, cut

    subject = SubjectOutputs(name="s", adapter="callable", fingerprint="0" * 64, profiles=profiles)
    context = AuditContext.from_tables(
        config=AuditConfig(seed=0),
        dataset=dataset,
        user_table=dataset.users.frame,
        group_columns=["age_group"],
        subject=subject,
    )
    adapter = CallableAdapter(CallableParams(target=f"{WORLD}:oracle_generate"))
    services = AuditServices(
        generation=GenerationService(cache_path=None),
        models=ModelRoles({}),
        subject=ModelHandle("subject", spec=None, settings=None, live=adapter),
        executor=LocalExecutor(),
    )
    context = dataclasses.replace(context, services=services)
    params = PersonalizationParams(
        max_groups_per_size=5, include_profile=True, scorers=[], methods=["listwise"]
    )
    findings = {f.metric: f for f in PersonalizationDetector(params).detect(context)}
    assert findings["groups"].details["members_with_profile"] > 0
    assert findings["kendall_tau:listwise"].estimate == pytest.approx(1.0)
