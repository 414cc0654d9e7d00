"""`@record`: the dataclasses the grid commands need, without the dataclasses module (leaf).

`dataclasses.dataclass` writes each class's `__init__`, `__repr__`, `__eq__`, `__hash__` and frozen
`__setattr__` as source text and `exec`s it, and importing `dataclasses` imports `inspect` (and with it
`ast`, `dis`, `tokenize`): measured on jsub's start-up, ~18 ms for the code generation and ~12 ms more
for the import (docs/performance.md). A record keeps dataclasses' behaviour with generic methods written
once here and a field table of its own, so a plain submission never imports `dataclasses`:

- `field()`: `default`, `default_factory`, `init`, `repr`, `compare`, `kw_only`, `metadata`; a mutable
  default (list, dict, set) is refused as dataclasses refuses it; annotations marked `ClassVar` are not
  fields; a record subclass of a record extends its fields (a redefined name keeps its place).
- `__init__`: positional then keyword arguments (keyword only with `kw_only=True`), defaults and
  `default_factory`, fields with `init=False` set from their default; a missing or unknown argument is a
  TypeError; `__post_init__` is called when the class has one.
- `__repr__`: `Name(a=1, b='x')` of the fields with `repr=True`; `__eq__`: same class and equal fields
  (`compare=True`), else NotImplemented; `__hash__`: frozen classes hash their compared fields, others
  are unhashable, as with eq=True; `frozen=True`: assigning or deleting an attribute raises
  FrozenInstanceError (an AttributeError, as dataclasses').
- `slots=True`: the class is made again with `__slots__` for its fields, as dataclasses' (qstat's rows:
  ~1.3 KB less per job, docs/performance.md); the class's own methods must not use zero-argument super().
- `fields`, `replace`, `asdict` as dataclasses' (`replace` also takes a real dataclass, so callers need
  not know which kind they hold).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:
    def dataclass_transform(**_kw: object) -> object:
        return lambda fn: fn


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_FIELDS = "__record_fields__"


class FrozenInstanceError(AttributeError):
    """Assigning to or deleting a field of a frozen record."""


class Field:
    __slots__ = ("name", "default", "default_factory", "init", "repr", "compare", "kw_only", "metadata")

    def __init__(self, default: Any, default_factory: Any, init: bool, repr: bool, compare: bool,
                 kw_only: Any, metadata: Any) -> None:
        self.name = ""
        self.default, self.default_factory = default, default_factory
        self.init, self.repr, self.compare, self.kw_only = init, repr, compare, kw_only
        self.metadata = {} if metadata is None else metadata

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r}, kw_only={self.kw_only!r})"


def field(*, default: Any = MISSING, default_factory: Any = MISSING, init: bool = True, repr: bool = True,
          compare: bool = True, kw_only: Any = MISSING, metadata: Any = None) -> Any:
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory, init, repr, compare, kw_only, metadata)


@dataclass_transform(field_specifiers=(field,))
def record(cls: type[T] | None = None, /, *, frozen: bool = False, kw_only: bool = False,
           slots: bool = False) -> Any:
    def wrap(c: type[T]) -> type[T]:
        made: type[T] = _build(c, frozen=frozen, kw_only=kw_only, slots=slots)
        return made
    return wrap if cls is None else wrap(cls)


def tuple_record(cls: type[T]) -> type[T]:
    """CLS, written as a `typing.NamedTuple` subclass (annotated fields with defaults, methods), made a
    `collections.namedtuple` without importing typing: the type checker sees the NamedTuple, the run
    time gets the same tuple class (`_fields`, `_replace`, `_make`, defaults, CLS's methods and doc)."""
    import collections  # noqa: PLC0415  (already loaded by the interpreter's own imports)

    own = cls.__dict__
    names = list(own.get("__annotations__", {}))
    defaults = [own[n] for n in names if n in own]
    if any(n not in own for n in names[len(names) - len(defaults):]):
        raise TypeError(f"{cls.__name__}: a field without a default cannot follow one with a default")
    # the names are known only here: mypy's namedtuple() wants literals (the checker sees CLS's NamedTuple)
    base: Any = collections.namedtuple(cls.__name__, names, defaults=defaults, module=own.get("__module__"))  # type: ignore[misc]
    extra = {k: v for k, v in own.items()
             if k not in names and k not in ("__dict__", "__weakref__", "__annotations__", "__orig_bases__")}
    made = type(cls.__name__, (base,), {**extra, "__slots__": ()})
    made.__qualname__ = cls.__qualname__
    return made


def is_record(obj: Any) -> bool:
    return hasattr(obj if isinstance(obj, type) else type(obj), _FIELDS)


def fields(obj: Any) -> tuple[Field, ...]:
    try:
        return tuple(getattr(obj, _FIELDS).values())
    except AttributeError:
        raise TypeError("must be called with a record type or instance") from None


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of OBJ (a record, or a dataclass) with CHANGES."""
    table = getattr(type(obj), _FIELDS, None)
    if table is None:
        import dataclasses  # noqa: PLC0415  (a real dataclass: the module is loaded already)

        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]  # OBJ is a dataclass here: no record table
    for f in table.values():
        if not f.init:
            if f.name in changes:
                raise ValueError(f"field {f.name} is declared with init=False, it cannot be specified with replace()")
        elif f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return type(obj)(**changes)


def asdict(obj: Any) -> Any:
    if is_record(obj) and not isinstance(obj, type):
        return {f.name: asdict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return type(obj)(asdict(v) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((asdict(k), asdict(v)) for k, v in obj.items())
    return obj


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    return text.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))


def _collect(cls: Any, kw_only: bool) -> dict[str, Field]:
    table: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        table.update(getattr(base, _FIELDS, {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(value, MISSING, True, True, True, MISSING, None)
        f.name = name
        if f.kw_only is MISSING:
            f.kw_only = kw_only
        if isinstance(f.default, (list, dict, set)):
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: use default_factory")
        if isinstance(value, Field):
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        table[name] = f
    return table


def _slotted(cls: Any, own: list[str]) -> Any:
    """CLS made again with `__slots__` for its own fields (as dataclasses' slots=True): its instances have
    no `__dict__`. The defaults stay in the field table (a slot and a class attribute cannot share a name)."""
    ns = {k: v for k, v in cls.__dict__.items() if k not in own and k not in ("__dict__", "__weakref__")}
    ns["__slots__"] = tuple(own)
    made = type(cls)(cls.__name__, cls.__bases__, ns)
    made.__qualname__ = cls.__qualname__
    return made


def _build(cls: Any, *, frozen: bool, kw_only: bool, slots: bool = False) -> Any:
    for base in cls.__mro__[1:]:
        if hasattr(base, _FIELDS) and base.__dict__.get("__record_frozen__", frozen) != frozen:
            raise TypeError("cannot inherit frozen record from a non-frozen one" if frozen
                            else "cannot inherit non-frozen record from a frozen one")
    table = _collect(cls, kw_only)
    if slots:
        inherited = {n for base in cls.__mro__[1:] for n in getattr(base, _FIELDS, {})}
        cls = _slotted(cls, [n for n in table if n not in inherited])
    all_fields = list(table.values())
    init = [f for f in all_fields if f.init]
    positional = [f.name for f in init if not f.kw_only]
    seen_default = False
    for f in init:
        if f.kw_only:
            continue
        if f.default is not MISSING or f.default_factory is not MISSING:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument '{f.name}' follows default argument")
    names = {f.name for f in init}
    later = [f for f in all_fields if not f.init]
    shown = tuple(f.name for f in all_fields if f.repr)
    compared = tuple(f.name for f in all_fields if f.compare)
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
            elif f.default is not MISSING:
                value = f.default
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                raise TypeError(f"{cls.__name__}.__init__() missing 1 required argument: '{f.name}'")
            setter(self, f.name, value)
        for f in later:
            if f.default is not MISSING:
                setter(self, f.name, f.default)
            elif f.default_factory is not MISSING:
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
    class_hash = own.get("__hash__", MISSING)
    explicit_hash = not (class_hash is MISSING or (class_hash is None and "__eq__" in own))
    for name, fn in (("__init__", __init__), ("__repr__", __repr__), ("__eq__", __eq__)):
        if name not in own:  # as dataclasses: a method the class defines itself is kept
            setattr(cls, name, fn)
    if frozen:
        def __setattr__(self: Any, name: str, value: Any) -> None:
            raise FrozenInstanceError(f"cannot assign to field '{name}'")

        def __delattr__(self: Any, name: str) -> None:
            raise FrozenInstanceError(f"cannot delete field '{name}'")

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
    setattr(cls, _FIELDS, table)
    cls.__record_frozen__ = frozen
    cls.__match_args__ = tuple(positional)  # type: ignore[misc]  # mypy refuses any assignment to it; CLS is being built
    return cls
