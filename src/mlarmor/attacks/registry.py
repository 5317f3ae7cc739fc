"""The attack registry: one name space for the attacks of every family.

A dict plus a decorator, as Opacus does for its accountants. The CLI, YAML plans and the contract
tests build attacks from it::

    @register("pgd")
    @dataclass(frozen=True, kw_only=True, slots=True)
    class PGD(FixedBudgetAttack): ...

    attack = create("pgd", eps=0.1, steps=20)
    available(Family.EVASION)  # ('apgd', 'apgd-t', 'auto', 'fgsm', ...)

Every registered class is a frozen dataclass deriving from
:class:`~mlarmor.attacks.base.AttackConfig` and declares its threat family (a
:class:`~mlarmor.findings.Family`); :func:`available` filters by it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING, TypeVar

from mlarmor.errors import InvalidParameterError, invalid_parameter
from mlarmor.findings import Family

if TYPE_CHECKING:
    from mlarmor.attacks.base import AttackConfig

__all__ = ["REGISTRY", "available", "create", "register"]

REGISTRY: dict[str, type[AttackConfig]] = {}
"""Attack name → attack class, every family together. Fill it with :func:`register`."""

_A = TypeVar("_A", bound="type[AttackConfig]")


def register(name: str) -> Callable[[_A], _A]:
    """Class decorator that makes an attack available to :func:`create` under ``name``.

    Apply it above ``@dataclass`` so that the registered class is the final (slotted) one. The class
    must be a dataclass declaring ``family`` (a :class:`~mlarmor.findings.Family`).

    Raises:
        InvalidParameterError: If ``name`` is empty or already taken by another class, or the class
            is not a dataclass with a family.
    """

    def decorate(cls: _A) -> _A:
        if not name or (name in REGISTRY and REGISTRY[name] is not cls):
            raise invalid_parameter("name", "register", "a non-empty name not registered yet", name)
        configured = is_dataclass(cls)  # a bool, so that ``cls`` keeps its type
        if not configured or not isinstance(getattr(cls, "family", None), Family):
            raise invalid_parameter(
                "cls", "register", "a dataclass declaring family: ClassVar[Family]", cls.__name__
            )
        REGISTRY[name] = cls
        return cls

    return decorate


def available(family: Family | None = None) -> tuple[str, ...]:
    """Registered attack names, sorted: all of them, or those of one threat ``family``.

    Raises:
        InvalidParameterError: If ``family`` is not a :class:`~mlarmor.findings.Family` (or its value).
    """
    if family is None:
        return tuple(sorted(REGISTRY))
    try:
        wanted = Family(family)
    except ValueError:
        known = ", ".join(repr(f.value) for f in Family)
        raise invalid_parameter("family", "available", f"one of {known}", family) from None
    return tuple(sorted(name for name, cls in REGISTRY.items() if cls.family == wanted))


def create(name: str, **params: object) -> AttackConfig:
    """Build the attack registered as ``name`` with the given parameters.

    Raises:
        InvalidParameterError: If ``name`` is unknown (the message lists the known names), a
            parameter does not exist (the message lists the attack's parameters) or has a wrong value.
    """
    try:
        cls = REGISTRY[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(n) for n in available()) or "(none registered)"
        raise invalid_parameter("name", "create", f"one of {known}", name) from None
    accepted = {f.name for f in fields(cls) if f.init}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise InvalidParameterError(
            f"{cls.__name__} has no parameter {unknown[0]!r}. "
            f"Its parameters are: {', '.join(sorted(accepted))}."
        )
    factory: Callable[..., AttackConfig] = cls
    return factory(**params)
