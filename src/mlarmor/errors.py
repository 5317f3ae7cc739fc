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

Messages say what was expected, what came, and what to do.
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "IntegrityError",
    "InvalidParameterError",
    "MlarmorError",
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
    """A parameter has a value outside its documented domain."""


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


def invalid_parameter(name: str, owner: str, expected: str, got: object) -> InvalidParameterError:
    """Build the one-shape parameter error message used across mlarmor.

    Example: ``The 'eps' parameter of LinfPGD must be a float in [0, inf). Got -0.1 instead.``
    """
    return InvalidParameterError(
        f"The {name!r} parameter of {owner} must be {expected}. Got {got!r} instead."
    )
