"""Fast AIPW path vs econml's DRLearner with bootstrap inference, 100K users x 20 treatments.

Run from the repository root::

    python -m benchmarks.bench_causal_ate            # econml on 2 treatments, extrapolated
    python -m benchmarks.bench_causal_ate --full     # econml on all treatments (tens of minutes)

Both sides use the same nuisance model classes (``LogisticRegression(C=1)`` propensity,
``Ridge(alpha=1)`` outcome model on ``[W, T]``, i.e. the fast path's ``outcome_form="joint"``),
5 cross-fitting folds and clipping at 0.01. econml draws its own folds (a different seed), so
the ATEs agree statistically, not to the last digit; the exact equality with shared folds is
``tests/test_causal_aipw.py``.

What is compared: the fast path's complete answer (ATE, influence-function SE, CI, BH and
FCR for all treatments, optionally a 1,000-draw percentile bootstrap of the scores) against
econml's ``DRLearner(...).fit(..., inference="bootstrap")`` per treatment, which refits every
nuisance model on each of 100 resamples (econml's default ``BootstrapInference``, run in
parallel over all cores). The speed-up therefore mostly comes from not refitting; the
single-fit econml time is printed too, so the reader can see both.

Every fit runs with one BLAS/OpenMP thread (``threadpoolctl``): on a shared 2-core machine,
multi-threaded BLAS inside many small L-BFGS fits made both sides 10x slower and their timings
meaningless. econml's bootstrap still uses its own worker processes (``n_jobs=-1``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from threadpoolctl import threadpool_limits

from audit_sdk.stats.aipw import estimate_ates


def make_data(
    n: int, m: int, p: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Confounded treatments (logistic in W) and a linear outcome with planted effects."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, p))
    loadings = rng.normal(0.0, 0.4, size=(p, m))
    logits = w @ loadings + rng.normal(-0.3, 0.3, size=m)
    t = (rng.random((n, m)) < 1 / (1 + np.exp(-logits))).astype(np.int8)
    truth = np.zeros(m)
    truth[:3] = (-0.2, 0.1, 0.05)
    y = w @ rng.normal(0.0, 0.3, size=p) + t @ truth + rng.standard_normal(n)
    return y, t, w, truth


def median_time(fn, repeats: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--treatments", type=int, default=20)
    parser.add_argument("--covariates", type=int, default=20)
    parser.add_argument("--econml-treatments", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="run econml on every treatment")
    parser.add_argument("--bootstrap", type=int, default=100, help="econml bootstrap resamples")
    parser.add_argument("--repeats", type=int, default=3, help="fast-path repeats (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress in logs

    from econml.dr import DRLearner
    from econml.inference import BootstrapInference

    n, m, p = args.users, args.treatments, args.covariates
    y, t, w, truth = make_data(n, m, p, args.seed)
    names = [f"t{j}" for j in range(m)]
    print(f"data: {n:,} users x {m} treatments x {p} covariates; 5 folds; clip 0.01")

    def fast(bootstrap: int = 0):  # type: ignore[no-untyped-def]
        return estimate_ates(
            y,
            t,
            w,
            treatment_names=names,
            folds=5,
            seed=args.seed,
            outcome_form="joint",
            bootstrap=bootstrap,
        )

    fast_s, fast_results = median_time(fast, args.repeats)
    fast_boot_s, _ = median_time(lambda: fast(1000), args.repeats)
    print(f"fast path, influence-function CIs + BH/FCR: median {fast_s:7.2f} s of {args.repeats}")
    print(
        f"fast path, + 1000-draw score bootstrap:    median {fast_boot_s:7.2f} s of {args.repeats}"
    )

    k = m if args.full else min(args.econml_treatments, m)
    econml_ate, econml_se, single_s, boot_s = [], [], [], []
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(k):

            def learner():  # type: ignore[no-untyped-def]
                return DRLearner(
                    model_propensity=LogisticRegression(C=1.0, max_iter=1000),
                    model_regression=Ridge(alpha=1.0),
                    cv=5,
                    min_propensity=0.01,
                    random_state=args.seed + 1,
                )

            start = time.perf_counter()
            learner().fit(y, t[:, j], X=None, W=w)
            single_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            est = learner().fit(
                y,
                t[:, j],
                X=None,
                W=w,
                inference=BootstrapInference(n_bootstrap_samples=args.bootstrap, n_jobs=-1),
            )
            boot_s.append(time.perf_counter() - start)
            econml_ate.append(float(np.ravel(est.ate())[0]))
            econml_se.append(float(np.ravel(est.ate_inference().stderr_mean)[0]))
            print(
                f"  econml {names[j]}: single fit {single_s[-1]:6.2f} s, "
                f"with bootstrap (B={args.bootstrap}) {boot_s[-1]:7.1f} s"
            )

    per_treatment = statistics.mean(boot_s)
    econml_total = per_treatment * m
    label = "measured" if k == m else f"EXTRAPOLATED from {k} of {m} treatments"
    print(
        f"econml DRLearner + bootstrap: {sum(boot_s):.1f} s for {k} treatment(s), "
        f"{per_treatment:.1f} s each -> {econml_total:.0f} s for {m} ({label})"
    )
    print(
        f"econml DRLearner single fits (no bootstrap): {statistics.mean(single_s):.2f} s each -> "
        f"{statistics.mean(single_s) * m:.1f} s for {m} ({label})"
    )
    print(f"speed-up vs econml+bootstrap: {econml_total / fast_s:7.1f}x (fast path, IF CIs)")
    print(
        f"speed-up vs econml+bootstrap: {econml_total / fast_boot_s:7.1f}x (fast path + bootstrap)"
    )
    assert isinstance(fast_results, list)
    diffs = [abs(fast_results[j].ate - econml_ate[j]) / fast_results[j].se for j in range(k)]
    se_ratio = [econml_se[j] / fast_results[j].se for j in range(k)]
    print(f"max |ATE fast - ATE econml| / SE: {max(diffs):.3f}  (over {k} treatment(s))")
    print("econml bootstrap SE / fast-path IF SE: " + ", ".join(f"{r:.2f}" for r in se_ratio))
    covered = [
        r.ci_low <= truth[j] <= r.ci_high
        for j, r in enumerate(fast_results)  # type: ignore[operator]
    ]
    print(f"fast-path 95% CIs covering the planted effect: {sum(covered)} of {m}")


if __name__ == "__main__":
    main()
