"""Write a run's files: orders.csv, trades/optimal/diagnostics parquet and run.json.

Every file is written atomically, so an OMS polling the folder never picks up half a file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from core.atomic import atomic_write, atomic_write_text
from core.oms import write_orders
from core.results import OptimizationResult


def _clean(obj):
    """JSON-safe: numpy scalars to Python, NaN and inf to null."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def run_document(result: OptimizationResult) -> dict:
    doc = {"summary": result.summary, "status": result.status,
           "solver": result.solver, "solver_reason": result.solver_reason,
           "conflicts": result.solved.conflicts}
    if result.relaxation is not None:
        doc["relaxation"] = result.relaxation.to_dicts()
    return _clean(doc)


def write_outputs(result: OptimizationResult, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    files: dict[str, Path] = {}
    if result.ok:
        files["orders"] = write_orders(result.orders, out / "orders.csv")
        files["trades"] = atomic_write(out / "trades.parquet", result.trades.write_parquet)
        files["optimal"] = atomic_write(out / "optimal.parquet", result.optimal.write_parquet)
        if result.flows is not None and result.flows.height:
            files["flows"] = atomic_write(out / "flows.csv", result.flows.write_csv)
        if result.fx_orders is not None and result.fx_orders.height:
            files["fx_orders"] = atomic_write(
                out / "fx_orders.csv",
                result.fx_orders.select("currency_pair", "side", "notional").write_csv)
    files["diagnostics"] = atomic_write(out / "diagnostics.parquet",
                                        result.diagnostics.write_parquet)
    if result.relaxation is not None:
        files["relaxation"] = atomic_write(out / "relaxation.parquet",
                                           result.relaxation.write_parquet)
    files["run"] = atomic_write_text(out / "run.json",
                                     json.dumps(run_document(result), indent=2, default=str))
    return files
