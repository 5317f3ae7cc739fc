"""The attack registry: names the CLI, YAML plans and the contract tests use to build attacks.

A dict plus a decorator, as Opacus does for its accountants::

    @register("pgd")
    @dataclass(frozen=True, kw_only=True, slots=True)
    class PGD(FixedBudgetAttack): ...

    attack = create("pgd", eps=0.1, steps=20)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, TypeVar

from mlarmor.errors import InvalidParameterError, invalid_parameter

if TYPE_CHECKING:
    from mlarmor.attacks.base import Attack

__all__ = ["REGISTRY", "available", "create", "register"]

REGISTRY: dict[str, type[Attack]] = {}
"""Attack name → attack class. Fill it with :func:`register`."""

_A = TypeVar("_A", bound="type[Attack]")


def register(name: str) -> Callable[[_A], _A]:
    """Class decorator that makes an attack available to :func:`create` under ``name``.

    Apply it above ``@dataclass`` so that the registered class is the final (slotted) one.

    Raises:
        InvalidParameterError: If ``name`` is empty or already taken by another class.
    """

    def decorate(cls: _A) -> _A:
        if not name or (name in REGISTRY and REGISTRY[name] is not cls):
            raise invalid_parameter("name", "register", "a non-empty name not registered yet", name)
        REGISTRY[name] = cls
        return cls

    return decorate


def available() -> tuple[str, ...]:
    """Registered attack names, sorted."""
    return tuple(sorted(REGISTRY))


def create(name: str, **params: object) -> Attack:
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
    factory: Callable[..., Attack] = cls
    return factory(**params)
