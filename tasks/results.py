"""One codec for every step result: a dataclass to the JSON-able dict an XCom, a pod's result
file or the CLI carries, and back, by its type annotations (pydantic's ``TypeAdapter``).

A step's result is a plain dataclass that inherits :class:`Result`; it writes no ``to_dict`` or
``from_dict`` of its own. Dates travel as ISO strings, tuples as lists, NaN as NaN (the way
``json.dumps`` writes it); decoding converts them back and refuses a dict that lacks a field,
naming it. :func:`encode` and :func:`decode` do the same for any annotated type (``Decision |
None``, ``list[Candidate]``, ``date``): what :mod:`tasks.flows.steps` uses to hand one step's
result to the next. pydantic is imported on first use, so importing a step stays light.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Self


@cache
def _adapter(tp: Any):
    from pydantic import ConfigDict, TypeAdapter

    if isinstance(tp, type) and hasattr(tp, "__dataclass_fields__"):
        return TypeAdapter(tp)  # a dataclass carries its own config (Result's, below)
    return TypeAdapter(tp, config=ConfigDict(ser_json_inf_nan="constants"))


def encode(value: Any, tp: Any = None) -> Any:
    """``value`` (of annotated type ``tp``; default: its own class) as JSON-able data."""
    if value is None:
        return None
    return _adapter(type(value) if tp is None else tp).dump_python(value, mode="json")


def decode(data: Any, tp: Any) -> Any:
    """``data`` (what :func:`encode` made, e.g. an XCom) as an instance of ``tp``.

    Raises ``ValueError`` naming each missing or malformed field."""
    from pydantic import ValidationError

    try:
        return _adapter(tp).validate_python(data)
    except ValidationError as exc:
        name = getattr(tp, "__name__", str(tp))
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}"
                             for e in exc.errors())
        raise ValueError(f"not a {name}: {problems}") from None


class Result:
    """Base of a step's result dataclass: ``to_dict()`` and ``from_dict()`` by one codec."""

    # pydantic reads this from a stdlib dataclass: keep NaN metrics as NaN, ignore extra keys
    # (a computed field such as GateResult's summary comes back in the dict it is given).
    __pydantic_config__ = {"ser_json_inf_nan": "constants", "extra": "ignore"}

    def to_dict(self) -> dict:
        return encode(self)

    @classmethod
    def from_dict(cls, data: dict) -> Self:
        return decode(data, cls)
