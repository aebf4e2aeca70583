"""RunConfig: what a run reads and as of when, loaded from and saved to TOML.

Strict on purpose: an unknown key is a typo that would otherwise be silently ignored
(`numerarie = "EUR"` solving in USD), so it is rejected with the key's full path.
Relative paths in a config file are relative to that file, so a config travels with its data.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from core.atomic import atomic_write_text
from core.constraints.spec import ConstraintSpec
from core.data.schemas import TABLES
from core.errors import ConfigError

SolverChoice = Literal["auto", "clarabel", "mosek"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    dir: Path | None = Field(
        default=None, description="folder of <table>.parquet files; empty = embedded sample")
    files: dict[str, Path] = Field(
        default_factory=dict, description="per-table file overrides, e.g. positions = '...'")

    @field_validator("files")
    @classmethod
    def _known_tables(cls, v: dict[str, Path]) -> dict[str, Path]:
        unknown = sorted(set(v) - set(TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {', '.join(unknown)}; known: "
                             f"{', '.join(TABLES)}")
        return v


class ValidationConfig(_Strict):
    stale_price_hours: float = Field(default=24.0, gt=0,
                                     description="marks older than this are flagged stale")
    basket_tolerance_pct: float = Field(
        default=2.0, gt=0, description="basket value vs price gap that flags a basket")
    expiry_warning_days: int = Field(default=2, ge=0,
                                     description="futures this close to expiry are flagged")


ObjectiveMode = Literal["utility", "min_total_risk", "min_factor_risk", "target_exposures"]


class CostSettings(_Strict):
    """Which cost terms enter the objective. All are in the numeraire, over the horizon."""

    linear: bool = Field(default=True, description="half spread + commission on |trade|")
    impact: bool = Field(default=True, description="market impact: 3/2-power, or the curve")
    impact_curve: bool = Field(default=True, description="use impact_curve points where given")
    borrow: bool = Field(default=True, description="borrow fee on short notional")
    financing: bool = Field(default=True, description="financing on long notional")
    dividends: bool = Field(
        default=False, description="dividends received long, paid short; only when alpha "
                                   "forecasts price return (a total-return alpha has them)")
    scale: float = Field(default=1.0, ge=0, description="multiplier on all trading costs")


class SyntheticSettings(_Strict):
    """ETF create/redeem and EFP: positions that change without crossing the market."""

    allow_create_redeem: bool = Field(
        default=False, description="create or redeem ETF units against their baskets")
    create_redeem_cost_bps: float = Field(
        default=2.0, ge=0, description="creation/redemption fee and slippage, bp of notional")
    max_redeem_notional: float | None = Field(
        default=None, ge=0, description="largest redemption per ETF, numeraire")
    allow_efp: bool = Field(default=False,
                            description="exchange futures for their baskets at the basis")
    efp_cost_bps: float = Field(
        default=1.0, ge=0, description="EFP fees and basis spread over fair, bp of notional")


class DiscreteSettings(_Strict):
    """Whole-name decisions the convex model cannot make, applied by round-and-repair."""

    min_trade_pct: float = Field(default=0.0, ge=0,
                                 description="drop trades smaller than this, %NAV")
    min_holding_pct: float = Field(default=0.0, ge=0,
                                   description="close positions smaller than this, %NAV")
    max_positions: int | None = Field(default=None, ge=0)
    max_trades: int | None = Field(default=None, ge=0)
    min_trade: dict[str, float] = Field(
        default_factory=dict, description="per-security minimum trade, %NAV (seed 004 "
                                          "securityMinTrade)")


class OptimizationSettings(_Strict):
    """How the objective is formed (platform spec section 10; seed 004 objectives).

    One period of `horizon_days`: alpha is scaled to it, annual risk and carry are scaled
    by horizon_days / 252, trading costs are paid once. Utility is in fractions of NAV.
    """

    objective: ObjectiveMode = "utility"
    relative_to_benchmark: bool = Field(
        default=False, description="risk and exposures active against the benchmark")
    risk_aversion: float = Field(default=2.0, ge=0, description="lambda on horizon variance")
    use_alpha: bool = True
    alpha_scale: float = Field(default=1.0, ge=0)
    horizon_days: int = Field(default=20, ge=1, le=2520)
    risk_terms: Literal["full", "factor", "idio"] = Field(
        default="full", description="full model, factor risk only, or specific risk only")
    factor_targets: dict[str, float] = Field(
        default_factory=dict, description="target exposures for objective=target_exposures")
    factor_target_weights: dict[str, float] = Field(
        default_factory=dict, description="weight per targeted factor (default 1)")
    costs: CostSettings = Field(default_factory=CostSettings)
    synthetics: SyntheticSettings = Field(default_factory=SyntheticSettings)
    discrete: DiscreteSettings = Field(default_factory=DiscreteSettings)
    look_through: bool = Field(
        default=True, description="ETFs, futures and baskets seen through their constituents "
                                  "for risk and group exposures")
    fx_factor_risk: bool = Field(
        default=False, description="cash in a currency other than the numeraire loads on "
                                   "that currency's factor, so FX risk on cash is measured")
    fx_cost_bps: float = Field(
        default=0.5, ge=0, description="cost of an FX trade, bp of notional (keeps FX trades "
                                       "to what the cash bands need)")
    margin_hedge_credit: bool = Field(
        default=True, description="a basket held against its constituents margins at its "
                                  "synthetic_margin_override rate, not both legs' rates")
    time_limit_s: float = Field(default=30.0, gt=0)
    representation: Literal["shares", "notional", "weights"] = "shares"


class ConsoleSettings(_Strict):
    """How the console behaves for this desk; `keys` remaps bindings by their id."""

    keys: dict[str, str] = Field(
        default_factory=dict,
        description="binding id -> key, e.g. {\"run.solve\" = \"f5\"}; ids in F1 help")


class RunConfig(_Strict):
    account: str = Field(default="DEMO", min_length=1)
    run_date: dt.date | None = Field(default=None, description="defaults to the as-of date")
    as_of: dt.datetime | None = Field(
        default=None, description="defaults to now (to the sample's own time on the sample)")
    numeraire: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    solver: SolverChoice = "auto"
    data: DataConfig = Field(default_factory=DataConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    optimization: OptimizationSettings = Field(default_factory=OptimizationSettings)
    constraints: list[ConstraintSpec] = Field(
        default_factory=list, description="[[constraints]] tables; see core/constraints")
    constraint_files: list[Path] = Field(
        default_factory=list, description="parquet/CSV files of more constraints, e.g. "
                                          "per-security bounds")
    runs_dir: Path = Field(default=Path("runs"),
                           description="where every solve writes its JSON run log")
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def resolve(self, path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else (self._base_dir / path)

    def data_dir(self) -> Path:
        if self.data.dir is None:
            from sample_data import SAMPLE_DIR
            return SAMPLE_DIR
        return self.resolve(self.data.dir)

    def runs_path(self) -> Path:
        return self.resolve(self.runs_dir)

    def file_overrides(self) -> dict[str, Path]:
        return {name: self.resolve(p) for name, p in self.data.files.items()}

    def all_constraints(self) -> list[ConstraintSpec]:
        """The config's constraints followed by those of each constraint file."""
        from core.constraints.tables import read_constraint_file

        specs = list(self.constraints)
        for path in self.constraint_files:
            specs.extend(read_constraint_file(self.resolve(path)))
        return specs

    def effective_as_of(self) -> dt.datetime:
        if self.as_of is not None:
            return self.as_of
        if self.run_date is not None:
            return dt.datetime.combine(self.run_date, dt.time(23, 59, 59))
        if self.data.dir is None:
            from sample_data import SAMPLE_AS_OF
            return SAMPLE_AS_OF
        return dt.datetime.now()

    def effective_run_date(self) -> dt.date:
        return self.run_date or self.effective_as_of().date()

    # --- TOML -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config",
                  base_dir: Path | None = None) -> "RunConfig":
        try:
            cfg = cls.model_validate(data)
        except ValidationError as exc:
            raise _config_error(exc, source) from None
        if base_dir is not None:
            cfg._base_dir = base_dir
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        if not path.exists():
            raise ConfigError("config file not found", file=path,
                              fix="check the path, or run without --config for the sample data")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML ({exc})", file=path,
                              fix="correct the syntax at the line and column given") from None
        except (UnicodeDecodeError, OSError) as exc:
            raise ConfigError(f"cannot read the file ({exc})", file=path,
                              fix="save it as UTF-8 text") from None
        return cls.from_dict(data, source=str(path), base_dir=path.resolve().parent)

    def to_toml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        # A constraint is written with only what differs from the defaults, so a trader
        # reading the file sees `kind`, the bounds and the unit, not fifteen keys per row.
        data["constraints"] = [
            {"kind": c.kind, **c.model_dump(mode="json", exclude_none=True,
                                            exclude_defaults=True)}
            for c in self.constraints]
        if not data["constraints"]:
            del data["constraints"]
        return tomli_w.dumps(data)

    def save(self, path: str | Path) -> Path:
        """Write atomically: a crash mid-write never leaves a half-written config."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, self.to_toml())
        return path


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    """One message for the first problem, naming the key by its full dotted path."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
    if err["type"] == "extra_forbidden":
        return ConfigError(f"unknown key '{key}'{more}", file=source, field=key,
                           fix="remove it or check its spelling against `spo config show`")
    msg = err["msg"].removeprefix("Value error, ")
    return ConfigError(f"invalid value for '{key}': {msg}{more}", file=source, field=key,
                       fix=f"set '{key}' to a valid value (got {err.get('input')!r})")
