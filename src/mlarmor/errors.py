"""The mlarmor error tree.

Every error that mlarmor raises on purpose derives from :class:`MlarmorError`; the CLI turns
each into a one-paragraph message and exit code 2, never a traceback::

    MlarmorError
    ├── InvalidParameterError (also ValueError)   a parameter or option has a wrong value
    │   └── PolicyError                           a --policy file cannot be read or is malformed
    ├── InputError                                a path or file given by the user cannot be used
    ├── UnsupportedModelError                     a model format or kind mlarmor cannot handle
    ├── UnsafeModelError                          a model failed the scan and was not loaded
    ├── ResourceLimitError                        a size, depth or count limit was exceeded
    ├── IntegrityError                            a manifest or signature cannot be read or checked
    └── NotFittedError (also AttributeError)      a fitted object was used before ``fit``

    MlarmorWarning (a UserWarning)                something to know that does not stop the run

Messages say what was expected, what came, and what to do.
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "IntegrityError",
    "InvalidParameterError",
    "MlarmorError",
    "MlarmorWarning",
    "NotFittedError",
    "PolicyError",
    "ResourceLimitError",
    "UnsafeModelError",
    "UnsupportedModelError",
    "invalid_parameter",
]


class MlarmorError(Exception):
    """Base class of every error mlarmor raises on purpose."""


class InvalidParameterError(MlarmorError, ValueError):
    """A parameter has a value outside its documented domain.

    Built by :func:`invalid_parameter`, it also carries the pieces of its message, so that the
    command line can say the same in its own words (``--eps must be a float in (0, inf), got 0.0.``):

    Attributes:
        parameter: The parameter's name, as the Python function spells it (``None`` when unknown).
        expected: What the parameter must be (``"a float in (0, inf)"``, ``"one of 'a', 'b'"``).
        got: The value that came.
        choices: The valid values, for a parameter with a closed set of them.
        hint: What to do, in one sentence (may be empty).
    """

    def __init__(
        self,
        message: str,
        *,
        parameter: str | None = None,
        expected: str = "",
        got: object = None,
        choices: tuple[str, ...] = (),
        hint: str = "",
    ) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.expected = expected
        self.got = got
        self.choices = choices
        self.hint = hint


class PolicyError(InvalidParameterError):
    """A scan policy file cannot be read, parsed or understood."""


class InputError(MlarmorError):
    """A path or file given by the user does not exist or cannot be read."""


class UnsupportedModelError(MlarmorError):
    """The model format or kind is not supported."""


class UnsafeModelError(MlarmorError):
    """A model file failed the scan, so it was not loaded."""


class ResourceLimitError(MlarmorError):
    """A configured size, depth, count or time limit was exceeded."""


class IntegrityError(MlarmorError):
    """A manifest, key or signature cannot be read, parsed or checked."""


class NotFittedError(MlarmorError, AttributeError):
    """A fitted object was used before ``fit`` was called."""


class MlarmorWarning(UserWarning):
    """Something the user should know that does not stop the run (the CLI prints it as a warning)."""


def invalid_parameter(
    name: str,
    owner: str,
    expected: str,
    got: object,
    *,
    choices: tuple[str, ...] = (),
    hint: str = "",
) -> InvalidParameterError:
    """Build the one-shape parameter error message used across mlarmor.

    Example: ``The 'eps' parameter of LinfPGD must be a float in [0, inf). Got -0.1 instead.``
    A ``hint`` (what to do) is appended as its own sentence.
    """
    message = f"The {name!r} parameter of {owner} must be {expected}. Got {got!r} instead."
    if hint:
        message += f" {hint[0].upper()}{hint[1:]}{'' if hint.endswith('.') else '.'}"
    return InvalidParameterError(
        message, parameter=name, expected=expected, got=got, choices=tuple(choices), hint=hint
    )
