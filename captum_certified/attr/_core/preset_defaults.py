"""A preset's ``attribute``: the engine's method with the preset's defaults in its signature.

A preset is configuration, not a second signature: ``attribute = with_defaults(
CertifiedWrapper.attribute, nt_samples=1024, stdevs=0.25)`` is the engine's function itself
(same code, same docstring) whose defaults are the preset's, so ``help()`` and the API docs
show the values a call without those arguments uses.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any

from captum.log import log_usage


class _PresetMethod:
    """Placed in a class body, it puts its function there under the owner's qualified name."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def __set_name__(self, owner: type, name: str) -> None:
        qualname = f"{owner.__qualname__}.{name}"
        self.function.__qualname__ = qualname
        inspect.unwrap(self.function).__qualname__ = qualname
        setattr(owner, name, self.function)


def with_defaults(method: Callable[..., Any], **defaults: Any) -> Any:
    """``method`` (a ``@log_usage()`` method) with other defaults for the named parameters.

    Assigned in a class body (``attribute = with_defaults(...)``), the class gets a plain
    function named after it (``SparseSmoothGrad.attribute``).

    Raises:
        TypeError: if a name is not a parameter of ``method`` that has a default.
    """
    func: Any = inspect.unwrap(method)
    params = inspect.signature(func).parameters
    for name in defaults:
        if name not in params or params[name].default is inspect.Parameter.empty:
            raise TypeError(f"{func.__qualname__} has no parameter {name!r} with a default")
    positional = [
        p.name for p in params.values() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    argdefs = tuple(
        defaults.get(name, params[name].default)
        for name in positional
        if params[name].default is not inspect.Parameter.empty
    )
    clone = types.FunctionType(
        func.__code__, func.__globals__, func.__name__, argdefs, func.__closure__
    )
    functools.update_wrapper(clone, func, updated=())
    delattr(clone, "__wrapped__")  # it is the function itself, not a wrapper of it
    clone.__kwdefaults__ = {
        name: defaults.get(name, default) for name, default in (func.__kwdefaults__ or {}).items()
    }
    return _PresetMethod(log_usage()(clone))
