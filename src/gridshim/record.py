"""`@record`: a dataclass without the code generation (leaf).

`dataclasses.dataclass` writes each class's `__init__`, `__repr__`, `__eq__`, `__hash__` and frozen
`__setattr__` as source text and `exec`s it: measured on the submit path, 16 classes cost ~18 ms of a
jsub's start-up (docs/performance.md). `record` lets dataclasses do only the bookkeeping (fields,
`__dataclass_fields__`, so `dataclasses.replace`, `fields` and `asdict` work unchanged) and gives the
class generic methods with the same behaviour, written once here:

- `__init__`: positional then keyword arguments (keyword only with `kw_only=True`), defaults and
  `default_factory`, fields with `init=False` set from their default; a missing or unknown argument is
  a TypeError;
- `__repr__`: `Name(a=1, b='x')` of the fields with `repr=True`;
- `__eq__`: same class and equal fields (`compare=True`), else NotImplemented;
- `__hash__`: frozen classes hash their compared fields; others are unhashable, as with eq=True;
- `frozen=True`: assigning or deleting an attribute raises dataclasses.FrozenInstanceError.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar

T = TypeVar("T")
_MISSING = dataclasses.MISSING


def record(cls: type[T] | None = None, /, *, frozen: bool = False, kw_only: bool = False) -> Any:
    def wrap(c: type[T]) -> type[T]:
        return _build(c, frozen=frozen, kw_only=kw_only)
    return wrap if cls is None else wrap(cls)


def _build(cls: Any, *, frozen: bool, kw_only: bool) -> Any:
    has_doc = cls.__dict__.get("__doc__") is not None
    if not has_doc:
        cls.__doc__ = cls.__name__  # dataclasses would otherwise build inspect.signature text
    dataclasses.dataclass(cls, init=False, repr=False, eq=False, frozen=False, kw_only=kw_only)
    fields = dataclasses.fields(cls)
    init = [f for f in fields if f.init]
    positional = [f.name for f in init if not f.kw_only]
    names = {f.name for f in init}
    later = [f for f in fields if not f.init]
    shown = tuple(f.name for f in fields if f.repr)
    compared = tuple(f.name for f in fields if f.compare)
    setter: Callable[[Any, str, Any], None] = object.__setattr__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(positional):
            raise TypeError(f"{cls.__name__}.__init__() takes {len(positional) + 1} positional arguments "
                            f"but {len(args) + 1} were given")
        for name, value in zip(positional, args):
            if name in kwargs:
                raise TypeError(f"{cls.__name__}.__init__() got multiple values for argument '{name}'")
            kwargs[name] = value
        unknown = [k for k in kwargs if k not in names]
        if unknown:
            raise TypeError(f"{cls.__name__}.__init__() got an unexpected keyword argument '{unknown[0]}'")
        for f in init:
            if f.name in kwargs:
                value = kwargs[f.name]
            elif f.default is not _MISSING:
                value = f.default
            elif f.default_factory is not _MISSING:
                value = f.default_factory()
            else:
                raise TypeError(f"{cls.__name__}.__init__() missing 1 required argument: '{f.name}'")
            setter(self, f.name, value)
        for f in later:
            if f.default is not _MISSING:
                setter(self, f.name, f.default)
            elif f.default_factory is not _MISSING:
                setter(self, f.name, f.default_factory())
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def __repr__(self: Any) -> str:
        return f"{type(self).__qualname__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in shown) + ")"

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return tuple(getattr(self, n) for n in compared) == tuple(getattr(other, n) for n in compared)

    own = cls.__dict__
    class_hash = own.get("__hash__", _MISSING)
    explicit_hash = not (class_hash is _MISSING or (class_hash is None and "__eq__" in own))
    for name, fn in (("__init__", __init__), ("__repr__", __repr__), ("__eq__", __eq__)):
        if name not in own:  # as dataclasses: a method the class defines itself is kept
            setattr(cls, name, fn)
    if frozen:
        def __setattr__(self: Any, name: str, value: Any) -> None:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field '{name}'")

        def __delattr__(self: Any, name: str) -> None:
            raise dataclasses.FrozenInstanceError(f"cannot delete field '{name}'")

        def __hash__(self: Any) -> int:
            return hash(tuple(getattr(self, n) for n in compared))

        if "__setattr__" in own or "__delattr__" in own:
            raise TypeError(f"cannot overwrite __setattr__ or __delattr__ in frozen {cls.__name__}")
        cls.__setattr__ = __setattr__
        cls.__delattr__ = __delattr__
        if not explicit_hash:
            cls.__hash__ = __hash__
    elif not explicit_hash:
        cls.__hash__ = None
    params = cls.__dataclass_params__  # what a dataclass subclass checks (a frozen base needs a frozen subclass)
    params.eq, params.frozen = True, frozen
    if not has_doc:
        cls.__doc__ = None
    return cls
