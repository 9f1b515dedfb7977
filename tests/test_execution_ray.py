"""The Ray backend on a local cluster of 2 workers: the same report as a local run, profile
generation and the causal nuisance fits spread over the workers, and a worker killed mid-shard
costing nothing but a retry. One cluster serves the whole module (starting one takes seconds).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from audit_sdk.errors import ConfigError
from audit_sdk.execution import current_executor, use_executor
from audit_sdk.generation_cache import GenerationCache
from audit_sdk.plugin_host import PluginHost, PluginSettings
from audit_sdk.runner import AuditRunner, run_audit
from audit_sdk.testing import inline_plugin

from . import execution_helpers
from .causal_worlds import confounded_world
from .execution_helpers import FragileWriter, findings_of, small_audit

ray = pytest.importorskip("ray")
from audit_sdk.execution_attribution import attribute_sharded  # noqa: E402
from audit_sdk.execution_ray import RayExecutor  # noqa: E402
from audit_sdk.stats.aipw import estimate_ates  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local Ray cluster with room for 2 one-CPU workers, shared by every test here."""
    os.environ["AUDIT_SDK_DRIVER_PID"] = str(os.getpid())
    # the test's own adapter travels by value: workers cannot import the tests package
    ray.cloudpickle.register_pickle_by_value(execution_helpers)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        logging_level="ERROR",
    )
    yield
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(execution_helpers)


def test_two_ray_workers_give_the_local_report(cluster: None, tmp_path: Path) -> None:
    local = run_audit(small_audit(tmp_path, "local", {"backend": "local"}))
    runner = AuditRunner(small_audit(tmp_path, "ray", {"backend": "ray", "workers": 2}), quiet=True)
    distributed = runner.run()
    assert findings_of(distributed.report) == findings_of(local.report)
    assert len(findings_of(local.report)) > 20
    profiles = distributed.context.subject.profiles
    assert profiles is not None and profiles["error"].isna().all()
    shards = runner.executor.shards_run
    generated = {pid for (phase, pid) in shards if phase == "generate"}
    assert len(generated) == 2, shards  # the users' shards went to both workers
    assert os.getpid() not in generated
    n_shards = -(-profiles["prompt_sha256"].nunique() // 6)  # batches of 6 users' prompts
    assert sum(n for (phase, _), n in shards.items() if phase == "generate") == n_shards
    assert current_executor().name == "local"  # the audit's executor is gone with the audit


def test_aipw_treatments_are_fitted_on_the_workers_with_the_local_estimates(
    cluster: None,
) -> None:
    """Many treatments: each one's cross-fitted nuisance models are a shard (its folds drawn
    from the estimator's seed), so the estimates, CIs and bootstrap equal the local ones."""
    world = confounded_world(1500, seed=4)
    kwargs = {"treatment_names": list(world.names), "bootstrap": 200, "seed": 7}
    local = estimate_ates(world.y, world.treatments, world.covariates, **kwargs)
    executor = RayExecutor(workers=2)
    try:
        with use_executor(executor):
            distributed = estimate_ates(world.y, world.treatments, world.covariates, **kwargs)
        fitted = {pid for (phase, pid) in executor.shards_run if phase == "statistics"}
    finally:
        executor.close()
    assert distributed == local
    assert sum(r.ci_low is not None for r in local) == len(world.names)
    assert len(fitted) == 2 and os.getpid() not in fitted
    covered = [r.ci_low < t < r.ci_high for r, t in zip(local, world.truth, strict=True)]
    assert sum(covered) >= len(covered) - 1  # the planted effects, up to one miss


def test_a_worker_killed_mid_shard_costs_only_a_retry(cluster: None, tmp_path: Path) -> None:
    reference = run_audit(
        small_audit(
            tmp_path, "local", {"backend": "local"}, detectors=[{"name": "profile_fidelity"}]
        )
    )
    marker = tmp_path / "a-worker-died"
    writer = {"name": "template_writer", "adapter": "fragile_writer"}
    config = small_audit(
        tmp_path,
        "killed",
        {"backend": "ray", "workers": 2, "max_retries": 1},
        detectors=[{"name": "profile_fidelity"}],
        profiles={
            "enabled": True,
            "batch_size": 6,
            "cache": str(tmp_path / "killed.sqlite"),
            "generators": [{**writer, "params": {"marker": str(marker)}}],
        },
    )
    host = PluginHost(PluginSettings.resolve(allow=None, block=[], autoload=True, strict=False))
    host.load_entry_points()  # the built-ins, and the fragile writer inline (sent pickled)
    local = config.execution.model_copy(update={"backend": "local", "workers": None})
    with inline_plugin(host, FragileWriter):
        runner = AuditRunner(config, host=host, quiet=True)
        result = runner.run()
        # the shards streamed into the driver's cache: a rerun (here local) resumes from it
        again = run_audit(config.model_copy(update={"execution": local}), host=host)
    assert marker.exists()  # a worker did die, mid-shard
    profiles = result.context.subject.profiles
    expected = reference.context.subject.profiles
    assert profiles is not None and expected is not None
    assert profiles["error"].isna().all()
    assert profiles["text"].tolist() == expected["text"].tolist()  # nothing lost
    assert findings_of(result.report) == findings_of(reference.report)
    workers = {pid for (phase, pid) in runner.executor.shards_run if phase == "generate"}
    assert len(workers) == 2 and os.getpid() not in workers
    assert runner.executor.workers_lost == 1  # one died and was replaced
    with GenerationCache(tmp_path / "killed.sqlite") as cache:
        assert len(cache) == expected["prompt_sha256"].nunique()  # every prompt stored once
    resumed = again.context.subject.profiles
    assert resumed is not None and resumed["cached"].all()
    assert resumed["text"].tolist() == expected["text"].tolist()


def test_workers_the_cluster_cannot_hold_are_refused_before_any_work(cluster: None) -> None:
    with pytest.raises(ConfigError, match="has 2 CPUs and 0 GPUs; one worker needs"):
        RayExecutor(workers=1, worker_gpus=1)


def test_faa_shards_on_the_workers_equal_the_local_shards(cluster: None) -> None:
    """Attribution by user shards: on 2 workers (the model loaded once on each) the same
    attributions, to the bit, as the same shards run locally; and the shards' join matches
    one unsharded call to the engine's batching tolerance."""
    from audit_sdk.attribution import attribute

    from .attribution_fixtures import history_prompts, tiny_adapter

    prompts, targets = history_prompts(6)
    model = tiny_adapter()
    settings = PluginSettings.resolve(allow=None, block=[], autoload=True, strict=False)
    try:
        local = attribute_sharded(model, prompts, targets, shard_size=3, settings=settings)
        whole = attribute(model, prompts, targets)
        executor = RayExecutor(workers=2)
        try:
            with use_executor(executor):
                spread = attribute_sharded(model, prompts, targets, shard_size=3, settings=settings)
            used = {pid for (phase, pid) in executor.shards_run if phase == "attribute"}
        finally:
            executor.close()
    finally:
        model.close()
    assert len(used) == 2 and os.getpid() not in used
    assert [p.prompt.prompt_id for p in spread.prompts] == [p.prompt_id for p in prompts]
    for a, b, c in zip(spread.prompts, local.prompts, whole.prompts, strict=True):
        np.testing.assert_array_equal(a.token_attributions, b.token_attributions)
        np.testing.assert_allclose(a.token_attributions, c.token_attributions, atol=1e-5)
    assert (spread.engine, spread.baseline) == (whole.engine, whole.baseline)
