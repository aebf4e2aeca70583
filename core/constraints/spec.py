"""A constraint as a user writes it (TOML `[[constraints]]`, or a row of a Polars table).

Normalized form (platform spec 9.3): lower, upper, hard or soft with a penalty.
`target` and `band` are a convenience: lower = target - band, upper = target + band.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.constraints.catalogue import KINDS


class ConstraintSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    kind: str = Field(description="a kind from core.constraints.catalogue.KINDS")
    name: str = Field(default="", description="unique label; defaults to kind and selector")
    lower: float | None = None
    upper: float | None = None
    target: float | None = None
    band: float | None = Field(default=None, ge=0)
    unit: str = Field(default="", description="defaults to the kind's first unit")
    instrument: str = Field(default="*", description="instrument scope: an id or '*'")
    group_by: str = Field(default="", description="group scope: sector, industry, ...")
    group: str = Field(default="*", description="group scope: a value or '*' for each")
    factor: str = Field(default="", description="factor_exposure: name, 'kind:style' or '*'")
    soft: bool = False
    penalty: float = Field(default=100.0, ge=0,
                           description="soft: utility bp of NAV lost per unit of violation")
    priority: float = Field(default=1.0, gt=0,
                            description="weight when relaxing an infeasible problem; a higher"
                                        " priority is relaxed less")
    enabled: bool = True

    @model_validator(mode="after")
    def _check(self) -> "ConstraintSpec":
        kind = KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"unknown constraint kind '{self.kind}'; known: "
                             f"{', '.join(KINDS)}")
        if not self.unit:
            object.__setattr__(self, "unit", kind.units[0])
        if self.unit not in kind.units:
            raise ValueError(f"{self.kind} takes unit {' or '.join(kind.units)}, "
                             f"not '{self.unit}'")
        for field in ("lower", "upper", "target", "band", "penalty"):
            value = getattr(self, field)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{field} must be a finite number, not {value}; leave it out "
                                 "for no bound")
        if self.target is not None and (self.lower is not None or self.upper is not None):
            raise ValueError("give either target (and band) or lower/upper, not both")
        if self.band is not None and self.target is None:
            raise ValueError("band goes with target")
        if kind.no_bounds:
            return self._named()
        lo, hi = self.lo, self.hi
        if lo is None and hi is None:
            raise ValueError(f"{self.kind} needs lower, upper or target")
        if kind.needs_upper and hi is None:
            raise ValueError(f"{self.kind} needs an upper bound")
        if kind.needs_upper and hi < 0:
            # These limits bound sizes, margins and volatilities, which are never negative:
            # a negative upper bound is a typo that would make every row infeasible.
            raise ValueError(f"{self.kind} bounds a quantity that is never negative "
                             f"({kind.doc}); upper must be 0 or more, not {hi:g}")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"contradictory bounds: lower {lo} > upper {hi}")
        if kind.scope == "group" and self.kind not in ("factor_exposure", "currency_cash") \
                and not self.group_by:
            raise ValueError(f"{self.kind} needs group_by (sector, industry, country, "
                             "currency, type or a bucket column)")
        if self.kind == "factor_exposure" and not self.factor:
            raise ValueError("factor_exposure needs factor (a name, 'kind:style' or '*')")
        return self._named()

    @property
    def lo(self) -> float | None:
        """Effective lower bound, in the constraint's unit."""
        if self.target is not None:
            return self.target - (self.band or 0.0)
        return self.lower

    @property
    def hi(self) -> float | None:
        if self.target is not None:
            return self.target + (self.band or 0.0)
        return self.upper

    def _named(self) -> "ConstraintSpec":
        if not self.name:
            kind = KINDS[self.kind]
            if kind.scope == "instrument":
                sel = self.instrument
            elif self.kind == "factor_exposure":
                sel = self.factor
            elif self.kind == "currency_cash":
                sel = self.group
            elif kind.scope == "group":
                sel = f"{self.group_by}={self.group}"
            else:
                sel = ""
            object.__setattr__(self, "name", f"{self.kind}[{sel}]" if sel else self.kind)
        return self
