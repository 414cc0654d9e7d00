"""Quantities: Kubernetes resource quantities and the grid's memory values, read and written (pure leaf).

Layer: imports nothing (only `re`: it is on jsub's start-up path). One place for every unit:

- Kubernetes (`resource.Quantity`): a signed decimal number (`1`, `1.5`, `.5`, `5.`) and one suffix:
  none, `n u m k M G T P E` (powers of 1000), `Ki Mi Gi Ti Pi Ei` (powers of 1024), or a decimal
  exponent `e3`/`E-2`. `ratio` reads it exactly; `parse` as a float, `parse_bytes` rounded up as
  `Quantity.Value()` rounds; `format_binary` writes bytes back exactly.
- The grid's memory values, each dialect with its own grammar and multipliers (`parse_memory`):
  `SGE` (sge_types(1), qsub-behaviour §1.7: `k`=1000, `K`=1024, `m`/`M`, `g`/`G`, `t`/`T`; a
  fraction is allowed and the product truncated, as SGE computes it in double), `JSUB_MEM` (jsub's
  `-mem`: an integer and k/m/g in either case, all binary), `JSUB_RESOURCE` (jsub's `-l h_vmem=…`:
  binary in either case, fraction and plain bytes allowed) and `SITE` (the site config's sizes: like
  jsub, plus `t`, an optional `i` and `B`, blanks around).

Errors are `QuantityError` (a ValueError) without the caller's wording: each command keeps its own
message for a value it refuses.
"""

from __future__ import annotations

import re


class QuantityError(ValueError):
    """Not a quantity in the grammar asked for."""


# -- Kubernetes ------------------------------------------------------------------------------------

_K8S = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([numkMGTPE])|[eE]([+-]?[0-9]+))?")
BINARY_SUFFIXES = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")  # 1024 ** (index + 1)
DECIMAL_EXPONENTS = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
# A decimal exponent beyond this is refused rather than computed (Kubernetes' int64 and inf.Dec
# ranges are far smaller; the bound only keeps `1e999999999` from costing memory).
MAX_EXPONENT = 1000


def ratio(q: str | int | float) -> tuple[int, int]:
    """A Kubernetes quantity as an exact fraction (numerator, denominator > 0). Ints are themselves,
    floats their shortest repr; a bool, None or anything else is refused."""
    if isinstance(q, bool) or not isinstance(q, (str, int, float)):
        raise QuantityError(f"invalid quantity {q!r}")
    if isinstance(q, int):
        return q, 1
    text = repr(q) if isinstance(q, float) else q
    m = _K8S.fullmatch(text.strip())
    if not m:
        raise QuantityError(f"invalid quantity {q!r}")
    sign, number, binary, decimal, exponent = m.groups()
    whole, _, fraction = number.partition(".")
    try:
        num, den = int(whole + fraction or "0"), 10 ** len(fraction)
        shift = int(exponent) if exponent is not None else DECIMAL_EXPONENTS.get(decimal or "", 0)
    except ValueError:  # more digits than int() reads (sys.int_info.default_max_str_digits)
        raise QuantityError(f"invalid quantity {q!r}: too many digits") from None
    if abs(shift) > MAX_EXPONENT:
        raise QuantityError(f"invalid quantity {q!r}: exponent out of range")
    if shift >= 0:
        num *= 10 ** shift
    else:
        den *= 10 ** -shift
    if binary:
        num <<= 10 * (BINARY_SUFFIXES.index(binary) + 1)
    return (-num if sign == "-" else num), den


def parse(q: str | int | float) -> float:
    """A Kubernetes quantity as a number ('512Mi' → 536870912.0, '250m' → 0.25); QuantityError if it is none."""
    num, den = ratio(q)
    try:
        return num / den
    except OverflowError:
        return float("inf") if num > 0 else float("-inf")


def parse_or_none(q: str | int | float | None) -> float | None:
    """`parse`, or None for None and for anything unreadable (a value read from an object, not typed)."""
    if q is None:
        return None
    try:
        return parse(q)
    except QuantityError:
        return None


def parse_bytes(q: str | int | float) -> int:
    """A Kubernetes quantity as a whole number, rounded up as Quantity.Value() does ('1500m' → 2)."""
    num, den = ratio(q)
    return -(-num // den)


def format_binary(n: int, suffixes: tuple[str, ...] = BINARY_SUFFIXES) -> str:
    """N as the largest of SUFFIXES (the k-th is 1024**k) that divides it exactly ('512Mi', '2Gi'); plain
    digits when none does. The same rule writes SGE's `512M` with suffixes ("K", "M", "G")."""
    for power in range(len(suffixes), 0, -1):
        size = 1 << (10 * power)
        if n % size == 0:
            return f"{n // size}{suffixes[power - 1]}"
    return str(n)


# -- the grid's memory values ----------------------------------------------------------------------

class Memory:
    """One dialect's memory grammar: PATTERN's group 1 is the number, group 2 the unit (its first letter
    counts, folded to lower case unless CASED), UNITS the multipliers; STRIP trims blanks first."""

    __slots__ = ("pattern", "units", "cased", "strip")

    def __init__(self, pattern: str, units: dict[str, int], *, cased: bool = False, strip: bool = True) -> None:
        self.pattern = re.compile(pattern)
        self.units = units
        self.cased = cased
        self.strip = strip


_BINARY = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
SGE = Memory(r"^(\d+(?:\.\d+)?)([kKmMgGtT]?)$", {
    "": 1, "k": 1000, "K": 1 << 10, "m": 1000 ** 2, "M": 1 << 20, "g": 1000 ** 3, "G": 1 << 30,
    "t": 1000 ** 4, "T": 1 << 40}, cased=True)
# jsub matched `(?i)^\d+[kmg]$` with re.match, unstripped (grid-behaviour §2.1)
JSUB_MEM = Memory(r"^(\d+)([kmgKMG])$", _BINARY, strip=False)
JSUB_RESOURCE = Memory(r"^(\d+(?:\.\d+)?)([kmgKMG]?)$", _BINARY)
SITE = Memory(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?)?[bB]?\s*$", _BINARY, strip=False)


def parse_memory(text: str, dialect: Memory = SGE) -> int:
    """A grid memory value in DIALECT → bytes: a whole number exactly, a fraction multiplied in floating
    point and truncated, as SGE computes it."""
    m = dialect.pattern.match(text.strip() if dialect.strip else text)
    if not m:
        raise QuantityError(f"invalid memory value {text!r}")
    unit = (m.group(2) or "")[:1]
    factor = dialect.units[unit if dialect.cased else unit.lower()]
    number = m.group(1)
    try:
        return int(number) * factor if number.isdigit() else int(float(number) * factor)
    except (ValueError, OverflowError):  # more digits than int() reads; a fraction beyond a float
        raise QuantityError(f"invalid memory value {text!r}: too large") from None


def human(n: float) -> str:
    """Bytes for a person, in the grid's binary letters: '512M', '1.5G', '300K', '12' (one decimal when not whole)."""
    for suffix, size in (("G", 2.0 ** 30), ("M", 2.0 ** 20), ("K", 2.0 ** 10)):
        if n >= size:
            v = n / size
            return f"{v:.0f}{suffix}" if v == int(v) else f"{v:.1f}{suffix}"
    return f"{n:.0f}"
