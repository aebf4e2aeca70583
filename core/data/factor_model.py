"""Assemble the factor model (names, kinds, covariance, loadings) from the long tables.

The covariance is kept K x K and the loadings N x K; the N x N asset covariance is never
formed (DESIGN.md section 4). A broken covariance poisons every solve, so its problems are
fatal; a broken loadings row only takes its instrument out of trading.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.linalg

from core.errors import DataError


@dataclass(frozen=True)
class FactorModel:
    set_name: str
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    covariance: np.ndarray  # K x K, annual decimal return squared
    root: np.ndarray  # R with R'R = covariance (rank-revealing), for x'Fx = ||Rx||^2

    @property
    def size(self) -> int:
        return len(self.names)


def choose_factor_set(risk_model: pl.DataFrame, factors: pl.DataFrame) -> str:
    """The factor set most instruments use; ties go to the first name alphabetically."""
    source = risk_model if not risk_model.is_empty() else factors
    if source.is_empty():
        raise DataError("no factor set defined", file="factors.parquet", field="factor_set_name",
                        fix="provide factors, factor_covariance and risk_model tables")
    counts = (source.group_by("factor_set_name").len()
              .sort(["len", "factor_set_name"], descending=[True, False]))
    return counts.item(0, "factor_set_name")


def build_factor_model(factors: pl.DataFrame, covariance: pl.DataFrame,
                       set_name: str) -> FactorModel:
    f = factors.filter(pl.col("factor_set_name") == set_name).sort("position")
    if f.is_empty():
        raise DataError(f"factor set '{set_name}' has no factors", file="factors.parquet",
                        field="factor_set_name",
                        fix=f"add the factors of '{set_name}' with their positions")
    k = f.height
    positions = f.get_column("position").to_list()
    if positions != list(range(k)):
        raise DataError(f"positions of factor set '{set_name}' must run 0..{k - 1} without gaps",
                        file="factors.parquet", field="position",
                        ids=[n for n, p in zip(f.get_column("name"), positions) if p >= k],
                        fix="number the factors by their index in factor_loadings")
    names = tuple(f.get_column("name").to_list())
    kinds = tuple(f.get_column("kind").to_list())
    bad_kinds = [n for n, kd in zip(names, kinds)
                 if kd not in ("style", "industry", "country", "currency", "market")]
    if bad_kinds:
        raise DataError("unknown factor kind", file="factors.parquet", field="kind",
                        ids=bad_kinds, fix="use style, industry, country, currency or market")

    cov_rows = covariance.filter(pl.col("factor_set_name") == set_name)
    index = {n: i for i, n in enumerate(names)}
    named = set(cov_rows.get_column("factor_i").to_list()) | set(
        cov_rows.get_column("factor_j").to_list())
    unknown = sorted(named - set(index))
    if unknown:
        raise DataError(f"covariance names factors not in factor set '{set_name}'",
                        file="factor_covariance.parquet", field="factor_i", ids=unknown,
                        fix="add them to factors.parquet or remove their covariance rows")
    i = np.fromiter((index[n] for n in cov_rows.get_column("factor_i")), dtype=np.int64)
    j = np.fromiter((index[n] for n in cov_rows.get_column("factor_j")), dtype=np.int64)
    v = cov_rows.get_column("covariance").to_numpy()

    mat = np.full((k, k), np.nan)
    mat[i, j] = v
    lower = np.where(np.isnan(mat), mat.T, mat)
    disagree = ~np.isnan(mat) & ~np.isnan(mat.T) & ~np.isclose(mat, mat.T, rtol=1e-8, atol=1e-14)
    if disagree.any():
        a, b = np.argwhere(disagree)[0]
        raise DataError(f"covariance is not symmetric: ({names[a]}, {names[b]}) = {mat[a, b]:.6g}"
                        f" but ({names[b]}, {names[a]}) = {mat[b, a]:.6g}",
                        file="factor_covariance.parquet", field="covariance",
                        fix="write one triangle only, or make both agree")
    missing_diag = [names[d] for d in range(k) if np.isnan(lower[d, d])]
    if missing_diag:
        raise DataError("factor variances missing", file="factor_covariance.parquet",
                        field="covariance", ids=missing_diag,
                        fix="add a (factor, factor) row with the variance of each factor")
    # Unlisted off-diagonal pairs are uncorrelated: vendors often omit zero covariances.
    cov = np.nan_to_num(lower, nan=0.0)
    # scipy's LAPACK: numpy's first eigh pays ~0.1 s of OpenBLAS thread start-up.
    w, q = scipy.linalg.eigh(cov)
    eig_min = float(w.min())
    if eig_min < -1e-10 * max(float(np.trace(cov)), 1e-300):
        raise DataError(f"covariance is not positive semidefinite (smallest eigenvalue "
                        f"{eig_min:.3g})", file="factor_covariance.parquet", field="covariance",
                        fix="re-export the covariance from the risk vendor; a hand-edited or "
                            "truncated matrix is the usual cause")
    w = np.clip(w, 0.0, None)
    keep = w > w.max(initial=0.0) * 1e-14
    return FactorModel(set_name, names, kinds, cov, np.sqrt(w[keep])[:, None] * q[:, keep].T)


def loadings_matrix(ids: pl.Series, risk_model: pl.DataFrame,
                    model: FactorModel) -> tuple[np.ndarray, pl.DataFrame]:
    """Loadings aligned to `ids` (zero rows where absent) and the rows that could not be used.

    Returns (N x K matrix, frame of instrument_id + reason for unusable risk rows).
    """
    k = model.size
    rm = risk_model.select("instrument_id", "factor_loadings", "factor_set_name",
                           pl.col("factor_loadings").list.len().alias("_n"))
    wrong_set = rm.filter(pl.col("factor_set_name") != model.set_name)
    wrong_len = rm.filter((pl.col("factor_set_name") == model.set_name) & (pl.col("_n") != k))
    has_nan = rm.filter((pl.col("_n") == k) & (pl.col("factor_set_name") == model.set_name)
                        & pl.col("factor_loadings").list.eval(
                            pl.element().is_null() | pl.element().is_nan()).list.any())
    problems = pl.concat([
        wrong_set.select("instrument_id", reason=pl.format(
            "risk row uses factor set {}, the run uses " + model.set_name, "factor_set_name")),
        wrong_len.select("instrument_id", reason=pl.format(
            "{} factor loadings, the factor set has " + str(k), "_n")),
        has_nan.select("instrument_id", reason=pl.lit("factor loadings contain NaN or null")),
    ])
    good = rm.join(problems.select("instrument_id"), on="instrument_id", how="anti")
    order = pl.DataFrame({"instrument_id": ids}).with_row_index("_row")
    good = order.join(good, on="instrument_id", how="inner")
    mat = np.zeros((ids.len(), k))
    if good.height:
        flat = good.get_column("factor_loadings").explode().to_numpy()
        mat[good.get_column("_row").to_numpy()] = flat.reshape(good.height, k)
    return mat, problems
