"""The Ray backend on a local cluster of 2 workers: the same report as a local run, profile
generation and the causal nuisance fits spread over the workers, and a worker killed mid-shard
costing nothing but a retry. One cluster serves the whole module (starting one takes seconds).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit_sdk.config import ProfileGeneratorConfig
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


def test_a_tinyrec_audit_with_faa_on_two_workers_equals_the_local_one(
    cluster: None, tmp_path: Path
) -> None:
    """The subject is a tiny TinyRec: its feature-ablation attribution (2 shards of 16 users)
    and the users' profiles run on the workers, each holding its own copy of the model
    (re-created from the subject's spec and fitted to the same split, once per worker); every
    finding, the attribution's included, equals the local run's."""
    from .attribution_fixtures import tiny_model_dir

    world = {"seed": 3, "n_users": 120, "n_artists": 30, "mean_tracks_per_artist": 4.0}
    sections = {
        "dataset": {"loader": "synthetic", "params": {**world, "mean_events_per_user": 50.0}},
        "subject": {"adapter": "huggingface", "params": {"model_dir": str(tiny_model_dir())}},
        "baselines": [],
        "detectors": [
            {"name": "attribution", "params": {"max_users": 32, "max_history": 4}},
            {"name": "profile_fidelity"},
        ],
        "sampling": {"windows": [365]},
    }

    def audit(name: str, execution: dict[str, object]) -> tuple[AuditRunner, Any]:
        config = small_audit(tmp_path, name, execution, **sections)
        profiles = config.profiles.model_copy(
            update={"generators": [ProfileGeneratorConfig(adapter="template_writer")]}
        )
        runner = AuditRunner(config.model_copy(update={"profiles": profiles}), quiet=True)
        return runner, runner.run()

    _, local = audit("local", {"backend": "local"})
    runner, distributed = audit("ray", {"backend": "ray", "workers": 2})
    faa = [f for f in local.report.findings if f.detector == "attribution"]
    assert faa and all(f.status != "skipped" and f.estimate is not None for f in faa)
    assert findings_of(distributed.report) == findings_of(local.report)
    for phase in ("attribute", "generate"):
        used = {pid for (p, pid) in runner.executor.shards_run if p == phase}
        assert len(used) == 2 and os.getpid() not in used, (phase, runner.executor.shards_run)
