"""GDRT: Group-DRO tuning that makes an LLM recommender read the user's history.

Wang et al., "Does LLM Focus on the Right Words? Diagnosing Language Bias in LLM-based
Recommenders" (GDRT, arXiv 2510.10978, WWW 2026). After supervised fine-tuning an LLM
recommender leans on auxiliary tokens (the task text, the answer's own prefix) rather than
the interactions. GDRT scores every training target by how predictable it is from the
auxiliary context alone (``r_t = log P(y_t | x_aux, y_<t)``, history removed), splits the
targets into ``K`` groups and tunes with Group DRO, which up-weights the groups the model
does worst on: those only the history predicts. The mitigator

* tunes the subject's model directory (TinyRec or any local transformers causal LM with an
  item map; full fine-tuning, or LoRA through ``peft``) with GDRT, and with plain SFT and
  IFairLRS reweighting on the same budget as baselines (:mod:`.gdrt_tuning`);
* measures all of them on the held-out items with paired CIs: NDCG@10, recall@10, the FAA
  auxiliary share and ratio, MGU@K / DGU@K over five popularity groups, per-user-group
  NDCG (:mod:`.gdrt_evaluation`), plus the groups and the training curves;
* returns the GDRT model as a new adapter (its own directory and fingerprint), which the
  pipeline audits again with every detector.

Configured as ``mitigators: [{name: gdrt, params: {...}}]``; ``audit-sdk mitigate-gdrt``
does the same for a model directory outside an audit.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer

from audit_sdk.hookspecs import RegisterCommand, hookimpl
from audit_sdk.interfaces import AuditContext, MitigationResult, Mitigator
from audit_sdk.interfaces.requirements import Needs, Requirement
from audit_sdk.plugin_commands import PluginCommand

from .gdrt_report import gdrt_curves, gdrt_tables
from .gdrt_tuning import GDRTParams, GDRTUnavailable, run_gdrt, summary_of

__all__ = ["GDRTMitigator", "MitigateGDRTCommand"]

logger = logging.getLogger(__name__)


def _tunable_model_dir(adapter: Any) -> Path:
    """The subject's model directory, or why GDRT cannot tune it."""
    from audit_sdk.adapters.huggingface_adapter import HuggingFaceAdapter

    name = getattr(adapter, "name", type(adapter).__name__)
    if not isinstance(adapter, HuggingFaceAdapter):
        raise GDRTUnavailable(
            f"adapter {name!r} offers no scoring and training of its weights: GDRT tunes a "
            "local transformers causal LM (adapter huggingface or tinyrec)"
        )
    if not adapter.supports("recommend"):
        raise GDRTUnavailable(
            f"adapter {name!r}: the model has no item map, so it cannot rank catalog items; "
            "GDRT needs a TinyRec-format model directory"
        )
    return Path(adapter._model_dir())


class GDRTMitigator(Mitigator[GDRTParams]):
    name = "gdrt"
    description = "Group-DRO tuning against context bias (GDRT, arXiv 2510.10978)."
    requires: ClassVar[frozenset[Requirement]] = frozenset({Needs.RECOMMENDATIONS})
    Params = GDRTParams

    def mitigate(self, context: AuditContext) -> MitigationResult:
        params = self.params
        adapter = context.adapter
        if adapter is None:
            raise GDRTUnavailable("the subject has no live adapter (a replayed log) to tune")
        model_dir = _tunable_model_dir(adapter)
        test_users = set(context.test.interactions.frame["user_id"].astype(str))
        users = [str(u) for u in context.user_table.index if str(u) in test_users]
        seed = params.seed if params.seed is not None else context.seed
        group_columns = context.group_columns
        outcome = run_gdrt(
            model_dir,
            train=context.train,
            test=context.test,
            users=users,
            params=params,
            seed=seed,
            k=context.k,
            base_fingerprint=adapter.fingerprint(),
            user_groups=context.user_table[group_columns] if group_columns else None,
            progress=lambda message: logger.info("GDRT: %s", message),
        )
        tuned = type(adapter)(
            adapter.params.model_copy(update={"model_dir": str(outcome.model_dir)})
        )
        paired = outcome.comparison["paired"].get("gdrt - before", {})
        ndcg = paired.get(f"ndcg@{context.k}", {})
        return MitigationResult(
            adapter=tuned,
            summary=(
                f"tuned {context.subject.name} with Group DRO ({params.update}, K={params.groups}) "
                f"on {outcome.details['n_examples']} examples; held-out NDCG@{context.k} "
                f"{ndcg.get('mean', float('nan')):+.4f} "
                f"[{ndcg.get('low', float('nan')):+.4f}, {ndcg.get('high', float('nan')):+.4f}] "
                "vs before"
            ),
            details=summary_of(outcome),
            tables=gdrt_tables(outcome.comparison, outcome.groups, context.k),
            curves=gdrt_curves(outcome.curves),
        )


def _print_comparison(out: Any, comparison: dict[str, Any], k: int) -> None:
    from rich.table import Table

    metrics = [f"ndcg@{k}", f"recall@{k}", "aux_share", f"mgu@{k}", f"dgu@{k}"]
    table = Table(title="GDRT: held-out before/after (95% CI, users resampled)")
    table.add_column("model")
    for m in metrics:
        table.add_column(m, justify="right")
    for name, row in comparison["arms"].items():
        table.add_row(
            name,
            *(f"{row[m]['mean']:.4f} [{row[m]['low']:.4f}, {row[m]['high']:.4f}]" for m in metrics),
        )
    out.print(table)
    for pair, row in comparison["paired"].items():
        cells = ", ".join(
            f"{m} {row[m]['mean']:+.4f} [{row[m]['low']:+.4f}, {row[m]['high']:+.4f}]"
            for m in metrics
        )
        out.print(f"{pair}: {cells}")


class MitigateGDRTCommand(PluginCommand):
    name = "mitigate-gdrt"
    description = (
        "Tune a model directory with GDRT (and SFT, IFairLRS) and compare on held-out items."
    )

    @staticmethod
    def run(
        model_dir: Annotated[Path, typer.Option("--model-dir", help="TinyRec-format model.")],
        config: Annotated[
            Path | None,
            typer.Option(help="Audit file whose dataset and split sections say what to use."),
        ] = None,
        params: Annotated[
            str, typer.Option(help='GDRT params as JSON, e.g. \'{"update": "online"}\'.')
        ] = "{}",
        out_dir: Annotated[
            Path | None, typer.Option("--out", help="Folder for the tuned models.")
        ] = None,
        seed: Annotated[
            int | None, typer.Option(help="Split and tuning seed (default: the config's).")
        ] = None,
    ) -> None:
        """Run GDRT on a model directory: relevance groups, Group DRO tuning beside SFT and
        IFairLRS on the same budget, and before/after held-out metrics with paired CIs."""
        from rich.console import Console

        from audit_sdk.config import load_config, parse_config
        from audit_sdk.errors import ConfigError
        from audit_sdk.plugin_host import get_plugin_host
        from audit_sdk.plugin_instances import validate_params
        from audit_sdk.sampling import filter_streams
        from audit_sdk.splitting import holdout_split

        out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 220)
        try:
            raw = json.loads(params)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--params is not JSON: {exc}") from None
        if out_dir is not None:
            raw = {**raw, "output_dir": str(out_dir)}
        registration = get_plugin_host().get("mitigator", "gdrt")
        gdrt_params = validate_params(registration, raw, where="--params", base_dir=Path.cwd())
        assert isinstance(gdrt_params, GDRTParams)
        cfg = load_config(config) if config is not None else parse_config({})
        host = get_plugin_host()
        reg = host.get("dataset_loader", cfg.dataset.loader)
        loader = reg.cls(
            validate_params(
                reg, cfg.dataset.params, where="dataset.params", base_dir=cfg.source_dir
            )
        )
        dataset = filter_streams(loader.load(), min_play_seconds=cfg.sampling.min_play_seconds)
        split_seed = cfg.seed if seed is None else seed
        split = holdout_split(
            dataset,
            test_items=cfg.split.test_items,
            strategy=cfg.split.strategy,
            min_train_items=cfg.split.min_train_items,
            seed=split_seed,
        )
        try:
            outcome = run_gdrt(
                model_dir,
                train=split.train,
                test=split.test,
                users=split.users,
                params=gdrt_params,
                seed=gdrt_params.seed if gdrt_params.seed is not None else split_seed,
                k=cfg.subject.k,
                progress=lambda message: out.print(f"[dim]{message}[/dim]"),
            )
        except GDRTUnavailable as exc:
            raise ConfigError(f"GDRT cannot run: {exc}") from None
        out.print(
            "groups: "
            + ", ".join(
                f"{g['group']}: n={g['size']}, mean r={g['mean_r']:.3f}" for g in outcome.groups
            )
        )
        _print_comparison(out, outcome.comparison, cfg.subject.k)
        out.print(f"timings (s): {outcome.timings}")
        out.print(f"Saved the GDRT model to {outcome.model_dir}")


@hookimpl
def audit_sdk_register_mitigators(register: Any) -> None:
    register(GDRTMitigator)


@hookimpl
def audit_sdk_register_commands(register: RegisterCommand) -> None:
    register(MitigateGDRTCommand)
