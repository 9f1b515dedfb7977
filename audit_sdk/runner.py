"""The audit runner: the pipeline's stages in order (each lives in :mod:`audit_sdk.pipeline`).

plan -> data -> outputs, profiles, scoring (subject and baselines) -> context -> detection
-> mitigation (re-entering the stages that depend on what changed) -> provenance -> reports.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from audit_sdk.cache_paths import generation_cache_path
from audit_sdk.config import AuditConfig
from audit_sdk.errors import ConfigError, ReportWriteError
from audit_sdk.execution import Executor, executor_for, use_executor
from audit_sdk.interfaces import AuditContext, ModelRun
from audit_sdk.memory_budget import budget_from_config, use_memory_budget
from audit_sdk.pipeline.context_stage import build_context
from audit_sdk.pipeline.data_stage import AuditData, load_audit_data
from audit_sdk.pipeline.detection_stage import missing_requirement, run_detectors
from audit_sdk.pipeline.mitigation_stage import run_mitigators
from audit_sdk.pipeline.outputs_stage import obtain_outputs
from audit_sdk.pipeline.plan import AuditPlan, plan_audit
from audit_sdk.pipeline.provenance_stage import assemble_report, generation_error_findings
from audit_sdk.pipeline.scoring_stage import score_run
from audit_sdk.pipeline.subject_run import SubjectSetup, run_subject
from audit_sdk.plugin_host import PluginHost, PluginSettings, get_plugin_host
from audit_sdk.profile_pipeline import TwoStepSampler
from audit_sdk.progress_display import ProgressDisplay
from audit_sdk.report_model import Report
from audit_sdk.report_preparation import prepare_report
from audit_sdk.report_writing import ReportWriteResult, write_reports
from audit_sdk.services import AuditServices, GenerationService, ModelHandle, ModelRoles

__all__ = ["AuditResult", "AuditRunner", "missing_requirement", "run_audit"]


@dataclass
class AuditResult:
    report: Report
    out_dir: Path
    written: ReportWriteResult
    context: AuditContext | None = None
    mitigated: list[AuditContext] = field(default_factory=list)
    """the context each mitigation's detectors saw (its mitigated subject), in config order"""


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
        self.settings = PluginSettings.resolve(
            allow=config.plugins.allow,
            block=config.plugins.block,
            autoload=config.plugins.autoload,
            strict=config.plugins.strict,
        )
        self.host = host or get_plugin_host(self.settings)
        self.executor: Executor = executor_for(config.execution)
        # a bad execution.max_memory fails here, before any work
        self.memory = budget_from_config(config.execution.max_memory)

    # -- stage 1 ----------------------------------------------------------------------------
    def plan(self) -> AuditPlan:
        """Resolve and instantiate every plugin the config names, validating parameters."""
        return plan_audit(self.config, self.host, where=self.config_path or "config")

    def _services(self, plan: AuditPlan, data: AuditData) -> AuditServices:
        pcfg = self.config.profiles
        cache = None
        if pcfg.cache is not None:
            cache = generation_cache_path() if pcfg.cache == "auto" else Path(pcfg.cache)
        return AuditServices(
            generation=GenerationService(
                cache_path=cache,
                batch_size=pcfg.batch_size,
                timeout_s=self.config.subject.timeout_s,
                executor=self.executor,
                settings=self.settings,
            ),
            models=ModelRoles(
                self.config.models,
                settings=self.settings,
                where=self.config_path or "config",
                base_dir=self.config.source_dir,
            ),
            subject=ModelHandle(
                self.config.subject.label,
                spec=plan.subject_spec,
                settings=self.settings,
                train=data.train,
                live=plan.subject,
            ),
            executor=self.executor,
            features=plan.features,
        )

    def _setup(self, plan: AuditPlan) -> SubjectSetup:
        return SubjectSetup(
            self.config.subject.label,
            plan.subject,
            self.config,
            TwoStepSampler(),
            plan.profile_generators,
        )

    # -- stages 2 to 6 ----------------------------------------------------------------------
    def _context(
        self, plan: AuditPlan, progress: ProgressDisplay
    ) -> tuple[AuditContext, AuditData]:
        cfg = self.config
        data = load_audit_data(cfg, plan.loader, plan.subject, progress)
        # stop at once when the smallest chunk of a stage cannot fit execution.max_memory
        self.memory.check_audit_fits(n_users=len(data.users), n_items=len(data.dataset.catalog))
        plan.notes.extend(data.notes)
        services = self._services(plan, data)
        subject, samples = run_subject(
            self._setup(plan),
            data,
            generation=services.generation,
            progress=progress,
            notes=plan.notes,
        )
        baselines: dict[str, ModelRun] = {}
        references = plan.baselines if len(data.train.interactions) else {}
        with progress.step("Reference baselines", total=len(references)) as step:
            for name, adapter in references.items():
                if name != cfg.subject.label:
                    outputs = obtain_outputs(
                        name,
                        adapter,
                        data.train,
                        data.users,
                        cfg,
                        services.generation,
                        notes=plan.notes,
                    )
                    test = data.test.interactions.frame
                    baselines[name] = score_run(outputs, test, data.users, k=cfg.subject.k)
                step.advance()
        with progress.step("Deriving groups"):
            context = build_context(
                cfg, data, subject=subject, baselines=baselines, samples=samples, services=services
            )
        return context, data

    def build_context(
        self, plan: AuditPlan | None = None, progress: ProgressDisplay | None = None
    ) -> AuditContext:
        """Load, split, obtain outputs and score users: everything detectors need."""
        with use_memory_budget(self.memory), use_executor(self.executor):
            return self._context(plan or self.plan(), progress or ProgressDisplay(quiet=True))[0]

    # -- stages 7 to 9 ----------------------------------------------------------------------
    def run(self) -> AuditResult:
        started = datetime.now(UTC)
        plan = self.plan()
        context: AuditContext | None = None
        mitigated_contexts: list[AuditContext] = []
        try:
            with (
                use_memory_budget(self.memory),
                use_executor(self.executor),
                ProgressDisplay(quiet=self.quiet) as progress,
            ):
                context, data = self._context(plan, progress)
                findings = generation_error_findings(context)
                findings += run_detectors(plan.detectors, context, self.executor, progress)
                mitigated = run_mitigators(
                    plan.mitigators,
                    plan.detectors,
                    context,
                    data=data,
                    setup=self._setup(plan),
                    executor=self.executor,
                    progress=progress,
                    notes=plan.notes,
                )
                for m in mitigated:
                    findings += m.findings
                mitigated_contexts = [m.context for m in mitigated if m.context is not context]
                report = assemble_report(
                    self.config,
                    context,
                    findings,
                    config_path=self.config_path,
                    plugins=self.host.records(),
                    started=started,
                    mitigated=mitigated_contexts,
                    notes=plan.notes,
                )
                with progress.step("Writing reports", total=len(plan.reporters)):
                    written = write_reports(report, self.out_dir, plan.reporters)
                report, _ = prepare_report(report)  # what callers get is redacted too
            for failure in written.failures:
                progress.note(f"[yellow]reporter {failure}[/yellow]")
        finally:
            for adapter in plan.adapters():
                with contextlib.suppress(Exception):
                    adapter.close()
            for mitigated_context in mitigated_contexts:  # a mitigator's new model, if any
                handle = mitigated_context.services.subject if mitigated_context.services else None
                main = context.services.subject if context and context.services else None
                if handle is not None and handle is not main:
                    with contextlib.suppress(Exception):
                        handle.close()
            if context is not None and context.services is not None:
                with contextlib.suppress(Exception):
                    context.services.close()
            with contextlib.suppress(Exception):
                self.executor.close()  # the workers of a distributed backend
        return AuditResult(
            report=report,
            out_dir=self.out_dir,
            written=written,
            context=context,
            mitigated=mitigated_contexts,
        )


def run_audit(
    config: AuditConfig,
    *,
    config_path: str | Path | None = None,
    out_dir: str | Path | None = None,
    quiet: bool = True,
    host: PluginHost | None = None,
) -> AuditResult:
    """Run an audit from Python: ``run_audit(load_config("audit.yaml"))``.

    Raises :class:`~audit_sdk.errors.ReportWriteError` when the reports could not all be
    written and published (what ``audit-sdk run`` reports with exit code 3)."""
    if not isinstance(config, AuditConfig):
        raise ConfigError("run_audit expects an AuditConfig (see audit_sdk.config.load_config)")
    result = AuditRunner(
        config, config_path=config_path, host=host, quiet=quiet, out_dir=out_dir
    ).run()
    if not result.written.ok:
        raise ReportWriteError(
            f"the audit ran but its reports in {result.out_dir} could not all be written: "
            + "; ".join(str(f) for f in result.written.failures)
        )
    return result
