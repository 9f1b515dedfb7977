"""The audit runner: data in, findings out, reports written.

1. resolve every plugin the config names (unknown names and bad parameters fail here,
   before any work);
2. load the dataset, keep real streams, split held-out items per user;
3. obtain the subject's outputs (and the reference baselines'), score them per user;
4. derive user groups; build the :class:`AuditContext`;
5. run each detector in isolation (an exception or a time-out becomes an ``error``
   finding), then each mitigator, re-running the detectors on the mitigated outputs;
6. assemble the :class:`Report` with provenance and render every reporter.
"""

from __future__ import annotations

import contextlib
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit_sdk import __version__
from audit_sdk.config import AuditConfig, config_sha256
from audit_sdk.data.tables import Dataset
from audit_sdk.errors import AdapterError, AuditSDKError, ConfigError
from audit_sdk.interfaces import (
    AuditContext,
    BootstrapSettings,
    DatasetLoader,
    Detector,
    GeneratorAdapter,
    Mitigator,
    Reporter,
    SubjectOutputs,
)
from audit_sdk.metrics.ranking import ranking_metrics
from audit_sdk.plugin_calls import CallRecord, call_isolated
from audit_sdk.plugin_host import PluginHost, PluginSettings, get_plugin_host
from audit_sdk.plugin_instances import validate_params
from audit_sdk.progress_display import ProgressDisplay
from audit_sdk.report_model import Finding, Provenance, Report, SubjectInfo
from audit_sdk.report_writing import ReportWriteResult, write_reports
from audit_sdk.sampling import filter_streams
from audit_sdk.splitting import holdout_split
from audit_sdk.user_groups import build_group_columns

__all__ = ["AuditResult", "AuditRunner", "run_audit"]


@dataclass
class AuditResult:
    report: Report
    out_dir: Path
    written: ReportWriteResult
    context: AuditContext | None = None


@dataclass
class _Plan:
    loader: DatasetLoader
    subject: GeneratorAdapter
    baselines: dict[str, GeneratorAdapter]
    detectors: list[tuple[Detector, float]]
    mitigators: list[tuple[Mitigator, float]]
    reporters: list[Reporter]
    profile_generators: dict[str, GeneratorAdapter] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def adapters(self) -> list[GeneratorAdapter]:
        return [self.subject, *self.baselines.values(), *self.profile_generators.values()]


class AuditRunner:
    def __init__(
        self,
        config: AuditConfig,
        *,
        config_path: str | Path | None = None,
        host: PluginHost | None = None,
        quiet: bool = False,
        out_dir: str | Path | None = None,
    ) -> None:
        self.config = config
        self.config_path = str(config_path) if config_path is not None else None
        self.quiet = quiet
        self.out_dir = Path(out_dir) if out_dir is not None else config.outputs.dir
        self.host = host or get_plugin_host(
            PluginSettings.resolve(
                allow=config.plugins.allow,
                block=config.plugins.block,
                autoload=config.plugins.autoload,
                strict=config.plugins.strict,
            )
        )

    # -- planning ---------------------------------------------------------------------------
    def plan(self) -> _Plan:
        """Resolve and instantiate every plugin the config names, validating parameters."""
        cfg = self.config
        where = self.config_path or "config"
        loader_reg = self.host.get("dataset_loader", cfg.dataset.loader)
        loader = loader_reg.cls(
            validate_params(loader_reg, cfg.dataset.params, where=f"{where}: dataset.params")
        )
        subject_reg = self.host.get("adapter", cfg.subject.adapter)
        subject = subject_reg.cls(
            validate_params(subject_reg, cfg.subject.params, where=f"{where}: subject.params")
        )
        baselines = {}
        for name in cfg.baselines:
            reg = self.host.get("adapter", name)
            baselines[name] = reg.cls(validate_params(reg, {}, where=f"{where}: baselines"))
        detectors = []
        for i, det in enumerate(cfg.detectors):
            reg = self.host.get("detector", det.name)
            params = validate_params(reg, det.params, where=f"{where}: detectors[{i}].params")
            detectors.append((reg.cls(params, det.thresholds), det.timeout_s))
        mitigators = []
        for i, mit in enumerate(cfg.mitigators):
            reg = self.host.get("mitigator", mit.name)
            params = validate_params(reg, mit.params, where=f"{where}: mitigators[{i}].params")
            mitigators.append((reg.cls(params), mit.timeout_s))
        reporters = [self.host.get("reporter", fmt).cls() for fmt in cfg.outputs.formats]
        plan = _Plan(loader, subject, baselines, detectors, mitigators, reporters)
        if cfg.profiles.enabled:
            plan.profile_generators = self._plan_profile_generators(subject, where)
        return plan

    def _plan_profile_generators(
        self, subject: GeneratorAdapter, where: str
    ) -> dict[str, GeneratorAdapter]:
        cfg = self.config
        configured = cfg.profiles.generators
        generators: dict[str, GeneratorAdapter] = {}
        if configured is None:
            if subject.supports("generate"):
                generators[cfg.subject.label] = subject
            if self.host.registry.has("adapter", "template_writer"):
                reg = self.host.get("adapter", "template_writer")
                generators.setdefault("template_writer", reg.cls())
            return generators
        for i, gen in enumerate(configured):
            if gen.adapter == cfg.subject.adapter and gen.params == cfg.subject.params:
                generators[gen.label] = subject
                continue
            reg = self.host.get("adapter", gen.adapter)
            params = validate_params(
                reg, gen.params, where=f"{where}: profiles.generators[{i}].params"
            )
            adapter = reg.cls(params)
            if not adapter.supports("generate"):
                raise ConfigError(
                    f"{where}: profiles.generators[{i}]: adapter {gen.adapter!r} cannot generate "
                    "text (it lacks the 'generate' capability)."
                )
            generators[gen.label] = adapter
        return generators

    # -- running ----------------------------------------------------------------------------
    def run(self) -> AuditResult:
        started = datetime.now(UTC)
        plan = self.plan()
        try:
            return self._run(plan, started)
        finally:
            for adapter in {id(a): a for a in plan.adapters()}.values():
                with contextlib.suppress(Exception):
                    adapter.close()

    def _run(self, plan: _Plan, started: datetime) -> AuditResult:
        with ProgressDisplay(quiet=self.quiet) as progress:
            context = self.build_context(plan, progress)
            findings = _profile_error_findings(context)
            findings += self._run_detectors(plan.detectors, context, progress)
            findings += self._run_mitigators(plan, context, progress)
            report = Report.build(
                provenance=self._provenance(context, started),
                findings=findings,
                notes=plan.notes,
            )
            report = report.model_copy(update={"title": self.config.title})
            with progress.step("Writing reports", total=len(plan.reporters)):
                written = write_reports(report, self.out_dir, plan.reporters)
        for failure in written.failures:
            progress.note(f"[yellow]reporter {failure}[/yellow]")
        return AuditResult(report=report, out_dir=self.out_dir, written=written, context=context)

    def build_context(
        self, plan: _Plan | None = None, progress: ProgressDisplay | None = None
    ) -> AuditContext:
        """Load, split, obtain outputs and score users: everything detectors need."""
        plan = plan or self.plan()
        progress = progress or ProgressDisplay(quiet=True)
        cfg = self.config
        with progress.step(f"Loading dataset ({cfg.dataset.loader})"):
            dataset = plan.loader.load()
            dataset = filter_streams(dataset, min_play_seconds=cfg.sampling.min_play_seconds)
        with progress.step("Splitting held-out items"):
            split = holdout_split(
                dataset,
                test_items=cfg.split.test_items,
                strategy=cfg.split.strategy,
                min_train_items=cfg.split.min_train_items,
                seed=cfg.seed,
            )
        users = split.users
        if cfg.sampling.max_users is not None and len(users) > cfg.sampling.max_users:
            rng = np.random.default_rng(cfg.seed)
            users = sorted(rng.choice(users, size=cfg.sampling.max_users, replace=False).tolist())
            plan.notes.append(
                f"audited a seeded random subset of {len(users)} of {len(split.users)} users "
                "(sampling.max_users)"
            )
        test_frame = split.test.interactions.frame
        test_frame = test_frame[test_frame["user_id"].isin(users)]
        k = cfg.subject.k

        subject_label = cfg.subject.label
        with progress.step(f"Subject {subject_label}: fitting and recommending"):
            subject = self._outputs(subject_label, plan.subject, split.train, users, k)
        if subject.recommendations is not None:
            covered = subject.recommendations["user_id"].nunique()
            if covered < len(users):
                plan.notes.append(
                    f"{subject_label} gave no recommendations for {len(users) - covered} of "
                    f"{len(users)} audited users; they count as misses (NDCG 0)"
                )
        baselines: dict[str, SubjectOutputs] = {}
        baseline_tables: dict[str, pd.DataFrame] = {}
        with progress.step("Reference baselines", total=len(plan.baselines)) as step:
            for name, adapter in plan.baselines.items():
                if name == subject_label:
                    step.advance()
                    continue
                outputs = self._outputs(name, adapter, split.train, users, k)
                baselines[name] = outputs
                if outputs.recommendations is not None:
                    baseline_tables[name] = ranking_metrics(
                        outputs.recommendations, test_frame, k=k
                    ).reindex(users)
                step.advance()

        samples = None
        if plan.subject.supports("replay"):
            # A team's logged profiles: audit them as they are; no model is run.
            profiles = plan.subject.logged_profiles()
            subject.profiles = profiles[profiles["user_id"].isin(users)].reset_index(drop=True)
            if cfg.profiles.enabled:
                subject.profiles, samples = self._profiles(
                    plan, split.train, users, progress, logged=subject.profiles
                )
        elif plan.profile_generators:
            for label, adapter in plan.profile_generators.items():
                if adapter is not plan.subject:
                    with progress.step(f"Profile generator {label}: fitting"):
                        _fit(adapter, label, split.train)
            subject.profiles, samples = self._profiles(plan, split.train, users, progress)

        with progress.step("Scoring users and deriving groups"):
            groups, group_columns = build_group_columns(users, split.train, cfg.groups)
            metric_columns: list[str] = []
            table = groups
            if subject.recommendations is not None:
                scores = ranking_metrics(subject.recommendations, test_frame, k=k).reindex(users)
                metric_columns = [f"ndcg@{k}", f"recall@{k}"]
                table = groups.join(scores[[*metric_columns, f"hit@{k}"]])
            if subject.user_metrics is not None:
                table = table.join(subject.user_metrics.reindex(table.index))
            attrs = split.train.users.frame.reindex(table.index)
            for column in attrs.columns:
                if column not in table.columns:
                    table[column] = attrs[column]
            counts = split.train.interactions.frame.groupby("user_id").size()
            table["n_train_events"] = counts.reindex(table.index).fillna(0).astype(int)

        return AuditContext(
            config=cfg,
            dataset=dataset,
            train=split.train,
            test=split.test.replace(interactions=split.test.interactions.with_frame(test_frame)),
            user_table=table,
            group_columns=group_columns,
            metric_columns=metric_columns,
            subject=subject,
            baselines=baselines,
            baseline_user_tables=baseline_tables,
            adapter=plan.subject,
            samples=samples,
            seed=cfg.seed,
            bootstrap=BootstrapSettings(cfg.stats.bootstrap_resamples, cfg.stats.confidence),
            min_group_size=cfg.groups.min_group_size,
            k=k,
        )

    def _profiles(
        self,
        plan: _Plan,
        train: Dataset,
        users: Sequence[str],
        progress: ProgressDisplay,
        *,
        logged: pd.DataFrame | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Two-step samples per window, a profile per (user, window, generator) (or the
        ``logged`` ones), and their fidelity to the samples."""
        from audit_sdk.generation_cache import GenerationCache
        from audit_sdk.interfaces import GenerationParams
        from audit_sdk.metrics.profile_fidelity import profile_fidelity
        from audit_sdk.profile_pipeline import generate_profiles, sample_profile_windows

        cfg = self.config
        pcfg = cfg.profiles
        chosen = list(users) if logged is None else sorted(logged["user_id"].unique())
        if logged is None and pcfg.max_users is not None and len(chosen) > pcfg.max_users:
            rng = np.random.default_rng(cfg.seed + 1)
            chosen = sorted(rng.choice(chosen, size=pcfg.max_users, replace=False).tolist())
            plan.notes.append(
                f"profiles were written for a seeded random subset of {len(chosen)} of "
                f"{len(users)} audited users (profiles.max_users)"
            )
        frame = train.interactions.frame
        subset = train.replace(
            interactions=train.interactions.with_frame(frame[frame["user_id"].isin(chosen)])
        )
        with progress.step("Sampling listening windows"):
            samples = sample_profile_windows(
                subset,
                windows=cfg.sampling.windows,
                reference=cfg.sampling.reference_date,
                top_artists=cfg.sampling.top_artists,
                tracks_per_artist=cfg.sampling.tracks_per_artist,
            )
            played = _played_artists(subset, samples, cfg)
        if logged is not None:
            profiles = logged
        else:
            cache = None
            if pcfg.cache is not None:
                from audit_sdk.cache_paths import generation_cache_path

                cache = GenerationCache(
                    generation_cache_path() if pcfg.cache == "auto" else pcfg.cache
                )
            total = sum(s["user_id"].nunique() for s in samples.values())
            params = GenerationParams(
                temperature=pcfg.temperature,
                top_p=pcfg.top_p,
                max_new_tokens=pcfg.max_new_tokens,
                seed=cfg.seed,
            )
            with progress.step(
                "Writing taste profiles", total=total * len(plan.profile_generators)
            ) as step:
                done: dict[str, int] = {}

                def advance(label: str, finished: int, _total: int) -> None:
                    step.advance(finished - done.get(label, 0))
                    done[label] = finished

                try:
                    profiles = generate_profiles(
                        samples,
                        subset.catalog,
                        plan.profile_generators,
                        params=params,
                        cache=cache,
                        batch_size=pcfg.batch_size,
                        progress=advance,
                        template=pcfg.template,
                    )
                finally:
                    if cache is not None:
                        cache.close()
        profiles = profile_fidelity(profiles, samples, subset.catalog, played_artists=played)
        sample_table = pd.concat(
            [s.assign(window=w) for w, s in samples.items()], ignore_index=True
        )
        return profiles, sample_table

    def _outputs(
        self,
        label: str,
        adapter: GeneratorAdapter,
        train: Dataset,
        users: Sequence[str],
        k: int,
    ) -> SubjectOutputs:
        recommendations = None
        user_metrics = None
        _fit(adapter, label, train)
        try:
            if adapter.supports("recommend"):
                recommendations = adapter.recommend(users, k=k)
            elif adapter.supports("generate"):
                from audit_sdk.generative_recommendation import recommend_by_generation
                from audit_sdk.interfaces import GenerationParams

                generated = recommend_by_generation(
                    adapter,
                    train,
                    users,
                    k=k,
                    params=GenerationParams(
                        temperature=self.config.subject.temperature,
                        max_new_tokens=self.config.subject.max_new_tokens,
                        seed=self.config.seed,
                    ),
                )
                recommendations = generated.recommendations
                user_metrics = generated.hallucination_rate.rename("hallucination_rate").to_frame()
        except AuditSDKError:
            raise
        except Exception as exc:
            raise AdapterError(
                f"adapter {adapter.name!r} ({label}) failed: {type(exc).__name__}: {exc}"
            ) from exc
        return SubjectOutputs(
            name=label,
            adapter=adapter.name,
            fingerprint=adapter.fingerprint(),
            recommendations=recommendations,
            description=adapter.describe(),
            user_metrics=user_metrics,
        )

    def _run_detectors(
        self,
        detectors: list[tuple[Detector, float]],
        context: AuditContext,
        progress: ProgressDisplay,
        *,
        label: str = "Detectors",
    ) -> list[Finding]:
        findings: list[Finding] = []
        with progress.step(label, total=len(detectors)) as step:
            for detector, timeout_s in detectors:
                reason = missing_requirement(detector, context)
                if reason is not None:
                    findings.append(
                        Finding(
                            detector=detector.name,
                            metric="(all)",
                            subject=context.subject.name,
                            status="skipped",
                            explanation=reason,
                        )
                    )
                else:
                    record = call_isolated(
                        lambda d=detector: d.detect(context),  # type: ignore[misc]
                        phase="detect",
                        plugin=detector.name,
                        timeout_s=timeout_s,
                    )
                    findings.extend(_findings_from(record, detector.name, context.subject.name))
                step.advance()
        return findings

    def _run_mitigators(
        self, plan: _Plan, context: AuditContext, progress: ProgressDisplay
    ) -> list[Finding]:
        findings: list[Finding] = []
        for mitigator, timeout_s in plan.mitigators:
            record = call_isolated(
                lambda m=mitigator: m.mitigate(context),  # type: ignore[misc]
                phase="mitigate",
                plugin=mitigator.name,
                timeout_s=timeout_s,
            )
            if not record.ok or record.result is None:
                findings.append(_error_finding(record, mitigator.name, context.subject.name))
                continue
            result = record.result
            mitigated = _context_with_outputs(context, result.outputs)
            for finding in self._run_detectors(
                plan.detectors, mitigated, progress, label=f"Detectors after {mitigator.name}"
            ):
                finding.details.setdefault(
                    "mitigation",
                    {"mitigator": mitigator.name, "summary": result.summary, **result.details},
                )
                findings.append(finding)
        return findings

    def _provenance(self, context: AuditContext, started: datetime) -> Provenance:
        cfg = self.config
        return Provenance(
            config=cfg.model_dump(mode="json"),
            config_sha256=config_sha256(cfg),
            config_path=self.config_path,
            data_fingerprint=context.dataset.fingerprint(),
            dataset=context.dataset.name,
            package_version=__version__,
            python_version=sys.version.split()[0],
            platform=platform.platform(),
            plugins=self.host.records(),
            seed=cfg.seed,
            started_at=started,
            finished_at=datetime.now(UTC),
            subject=_subject_info(context.subject),
            baselines=[_subject_info(b) for b in context.baselines.values()],
        )


def _fit(adapter: GeneratorAdapter, label: str, train: Dataset) -> None:
    try:
        adapter.fit(train)
    except AuditSDKError:
        raise
    except Exception as exc:
        raise AdapterError(
            f"adapter {adapter.name!r} ({label}) could not be fitted to the training data: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _profile_error_findings(context: AuditContext) -> list[Finding]:
    """One ``error`` finding per generator that failed on some prompts."""
    profiles = context.subject.profiles
    if profiles is None or "error" not in profiles:
        return []
    findings = []
    for model, part in profiles.groupby("model", sort=False):
        failed = part[part["error"].notna()]
        if failed.empty:
            continue
        findings.append(
            Finding(
                detector="profile_generation",
                metric="generation_errors",
                group_by="model",
                subject=str(model),
                estimate=len(failed) / len(part),
                n=len(part),
                status="error",
                explanation=(
                    f"{model} failed on {len(failed)} of {len(part)} profile prompts; first "
                    f"error: {failed['error'].iloc[0]}"
                ),
                details={"errors": failed["error"].value_counts().head(5).to_dict()},
            )
        )
    return findings


def _played_artists(
    train: Dataset, samples: dict[str, pd.DataFrame], cfg: AuditConfig
) -> dict[str, pd.DataFrame]:
    """Per window label, the (user, artist) pairs played in that window."""
    from audit_sdk.sampling import time_window, window_label

    catalog = train.catalog.frame["artist"]
    out = {}
    for label in samples:
        if label == "all" or not train.interactions.has_timestamps:
            frame = train.interactions.frame
        else:
            days = next(d for d in cfg.sampling.windows if window_label(d) == label)
            frame = time_window(train, days=days, reference=cfg.sampling.reference_date)
            frame = frame.interactions.frame
        pairs = frame[["user_id", "item_id"]].drop_duplicates()
        out[label] = pd.DataFrame(
            {
                "user_id": pairs["user_id"].to_numpy(),
                "artist": pairs["item_id"].map(catalog).to_numpy(),
            }
        )
    return out


def missing_requirement(detector: Detector, context: AuditContext) -> str | None:
    """Why ``detector`` cannot run on this audit, or None when it can."""
    for requirement in sorted(detector.requires):
        if requirement == "recommendations" and context.subject.recommendations is None:
            return (
                f"needs recommendation lists, and adapter {context.subject.adapter!r} "
                "produced none (it lacks the 'recommend' capability)"
            )
        if requirement == "profiles" and context.subject.profiles is None:
            return "needs generated profiles, and this audit generated none"
        if requirement == "ratings" and not _has_ratings(context):
            return "needs ratings (a 'rating' column in interactions or logged outputs)"
        if requirement.startswith("adapter:"):
            capability = requirement.split(":", 1)[1]
            if context.adapter is None or not context.adapter.supports(capability):  # type: ignore[arg-type]
                return (
                    f"needs the adapter capability {capability!r}, which adapter "
                    f"{context.subject.adapter!r} does not declare"
                )
    return None


def _has_ratings(context: AuditContext) -> bool:
    profiles = context.subject.profiles
    if profiles is not None and "rating" in profiles.columns:
        return bool(profiles["rating"].notna().any())
    return context.dataset.interactions.has_ratings


def _findings_from(record: CallRecord[Any], detector: str, subject: str) -> list[Finding]:
    if not record.ok:
        return [_error_finding(record, detector, subject)]
    result = record.result
    if not isinstance(result, list) or not all(isinstance(f, Finding) for f in result):
        return [
            Finding(
                detector=detector,
                metric="(all)",
                subject=subject,
                status="error",
                explanation=(
                    f"detector {detector!r} returned {type(result).__name__}, not a list of "
                    "Finding objects"
                ),
            )
        ]
    for finding in result:
        finding.details.setdefault("duration_s", round(record.duration_s, 3))
    return result


def _error_finding(record: CallRecord[Any], plugin: str, subject: str) -> Finding:
    return Finding(
        detector=plugin,
        metric="(all)",
        subject=subject,
        status="error",
        explanation=f"{plugin!r} failed during {record.phase}: {record.describe_error()}",
        details={"traceback": record.traceback, "duration_s": round(record.duration_s, 3)},
    )


def _context_with_outputs(context: AuditContext, outputs: SubjectOutputs) -> AuditContext:
    table = context.user_table.drop(columns=context.metric_columns, errors="ignore")
    if outputs.recommendations is not None:
        scores = ranking_metrics(
            outputs.recommendations, context.test.interactions.frame, k=context.k
        ).reindex(table.index)
        table = table.join(scores[context.metric_columns])
    return replace(context, subject=outputs, user_table=table)


def _subject_info(outputs: SubjectOutputs) -> SubjectInfo:
    return SubjectInfo(
        name=outputs.name,
        adapter=outputs.adapter,
        fingerprint=outputs.fingerprint,
        description=_jsonable(outputs.description),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def run_audit(
    config: AuditConfig,
    *,
    config_path: str | Path | None = None,
    out_dir: str | Path | None = None,
    quiet: bool = True,
    host: PluginHost | None = None,
) -> AuditResult:
    """Run an audit from Python: ``run_audit(load_config("audit.yaml"))``."""
    if not isinstance(config, AuditConfig):
        raise ConfigError("run_audit expects an AuditConfig (see audit_sdk.config.load_config)")
    return AuditRunner(
        config, config_path=config_path, host=host, quiet=quiet, out_dir=out_dir
    ).run()
