"""gridshim.quantity: Kubernetes quantities and the grid's memory dialects, read and written."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from gridshim import quantity as Q

KI = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
SI = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1, "k": 10**3, "M": 10**6,
      "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


# -- Kubernetes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("512Mi", 512 * 2**20), ("2Gi", 2 * 2**30), ("1.5Gi", 3 * 2**29), ("1Ei", 2**60), (".5Ki", 512), ("5.", 5),
    ("1.5", Fraction(3, 2)), ("250m", Fraction(1, 4)), ("2G", 2 * 10**9), ("1E", 10**18), ("10", 10),
    ("1e3", 1000), ("1E6", 10**6), ("5e-1", Fraction(1, 2)), ("+1Mi", 2**20), ("-2k", -2000),
    ("100u", Fraction(1, 10**4)), ("10n", Fraction(1, 10**8)), (" 64Mi ", 64 * 2**20), (4096, 4096),
    (1.5, Fraction(3, 2)), (1e-05, Fraction(1, 10**5)),
])
def test_kubernetes_quantities_are_read_exactly(text: str | int | float, value: Fraction | int) -> None:
    assert Fraction(*Q.ratio(text)) == value
    assert Q.parse(text) == float(value) == Q.parse_or_none(text)


@pytest.mark.parametrize("text", ["", "Mi", "1 Mi", "1MiB", "1x", "abc", "lots", "1e", "--1", "1e3Mi", "1.2.3",
                                  "1KI", "1mi", "٥Mi", "inf", "1e99999", None, True, [1], float("nan")])
def test_what_is_not_a_kubernetes_quantity(text: object) -> None:
    with pytest.raises(Q.QuantityError):
        Q.ratio(text)  # type: ignore[arg-type]
    assert Q.parse_or_none(text) is None  # type: ignore[arg-type]


def test_parse_bytes_rounds_up_like_quantity_value() -> None:
    assert Q.parse_bytes("0.2Gi") == 214748365 and Q.parse_bytes("1500m") == 2 and Q.parse_bytes("1") == 1
    assert Q.parse_bytes("-1500m") == -1  # towards +infinity, as Value() rounds


def test_a_huge_quantity_is_infinite_as_a_float() -> None:
    assert Q.parse("1e400") == float("inf") and Q.parse("-1e400") == float("-inf")


NUMBERS = st.tuples(st.sampled_from(["", "+", "-"]), st.text("0123456789", max_size=6),
                    st.one_of(st.none(), st.text("0123456789", max_size=4))).filter(
    lambda t: t[1] or t[2])  # '1', '1.', '.5', '1.25'
SUFFIXES = st.one_of(st.sampled_from(list(KI) + list(SI)), st.integers(-30, 30).map(lambda e: f"e{e}"),
                     st.integers(-30, 30).map(lambda e: f"E{e:+d}"))


def _expected(sign: str, whole: str, fraction: str | None, suffix: str) -> Fraction:
    number = Fraction(f"{whole or '0'}.{fraction or '0'}")
    if suffix in KI:
        factor: Fraction | int = KI[suffix]
    elif suffix in SI:
        factor = SI[suffix]
    else:
        factor = Fraction(10) ** int(suffix[1:])
    return -(number * factor) if sign == "-" else number * factor


@given(NUMBERS, SUFFIXES)
def test_every_kubernetes_spelling_reads_as_its_exact_value(number: tuple[str, str, str | None], suffix: str) -> None:
    sign, whole, fraction = number
    text = f"{sign}{whole}{'' if fraction is None else '.' + fraction}{suffix}"
    assert Fraction(*Q.ratio(text)) == _expected(sign, whole, fraction, suffix), text


@given(st.integers(min_value=0, max_value=2**70))
def test_format_binary_round_trips_and_uses_the_largest_exact_suffix(n: int) -> None:
    text = Q.format_binary(n)
    assert Q.parse_bytes(text) == n and Q.ratio(text) == (n, 1)
    digits = text.rstrip("KMGTPEi")
    assert digits.isdigit()
    if text != digits and n:  # a larger suffix would not divide it
        bigger = KI[text[len(digits):]] * 1024
        assert text.endswith("Ei") or n % bigger != 0
    elif n:
        assert n % 1024 != 0


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(list(KI)))
def test_binary_suffixes_are_exact(n: int, suffix: str) -> None:
    assert Q.parse_bytes(f"{n}{suffix}") == n * KI[suffix]


# -- the grid's memory dialects --------------------------------------------------------------------

SGE_UNITS = {"": 1, "k": 1000, "K": 1024, "m": 10**6, "M": 2**20, "g": 10**9, "G": 2**30, "t": 10**12, "T": 2**40}


@pytest.mark.parametrize("text,value", [
    ("512M", 512 * 2**20), ("512m", 512 * 10**6), ("1k", 1000), ("1K", 1024), ("2G", 2 * 2**30), ("2g", 2 * 10**9),
    ("1.5K", 1536), ("100", 100), (" 1T ", 2**40), ("0.1k", 100),
])
def test_sge_memory_lower_case_is_decimal_upper_case_binary(text: str, value: int) -> None:
    assert Q.parse_memory(text, Q.SGE) == Q.parse_memory(text) == value


@pytest.mark.parametrize("text", ["", "1Mi", "1 M", "M", "-1M", "1.M", "1e3", "1MB", "lots"])
def test_what_sge_refuses_as_memory(text: str) -> None:
    with pytest.raises(Q.QuantityError):
        Q.parse_memory(text, Q.SGE)


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(list(SGE_UNITS)))
def test_sge_whole_numbers_are_exact(n: int, unit: str) -> None:
    assert Q.parse_memory(f"{n}{unit}", Q.SGE) == n * SGE_UNITS[unit]


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=999),
       st.sampled_from(list(SGE_UNITS)))
def test_sge_fractions_are_truncated_after_multiplying_in_double(n: int, frac: int, unit: str) -> None:
    text = f"{n}.{frac:03d}{unit}"
    assert Q.parse_memory(text, Q.SGE) == int(float(f"{n}.{frac:03d}") * SGE_UNITS[unit])


@given(st.integers(min_value=0, max_value=2**50))
def test_sge_memory_written_by_qstat_reads_back(n: int) -> None:
    """qstat -r writes a qsub job's memory with the binary K/M/G letters; qsub reads them back to the byte."""
    text = Q.format_binary(n, ("K", "M", "G"))
    assert Q.parse_memory(text, Q.SGE) == n


@pytest.mark.parametrize("text,value", [("512m", 512 * 2**20), ("1G", 2**30), ("4k", 4096), ("4K", 4096)])
def test_jsub_mem_is_an_integer_and_a_binary_letter(text: str, value: int) -> None:
    assert Q.parse_memory(text, Q.JSUB_MEM) == value


@pytest.mark.parametrize("text", ["512", "1.5g", "2Gi", " 1g", "1t", "g"])
def test_what_jsub_mem_refuses(text: str) -> None:
    with pytest.raises(Q.QuantityError):
        Q.parse_memory(text, Q.JSUB_MEM)


@pytest.mark.parametrize("dialect,text,value", [
    (Q.JSUB_RESOURCE, "1.5g", 3 * 2**29), (Q.JSUB_RESOURCE, "256M", 256 * 2**20), (Q.JSUB_RESOURCE, "100", 100),
    (Q.SITE, "512M", 512 * 2**20), (Q.SITE, "1536Mi", 1536 * 2**20), (Q.SITE, " 2 GB ", 2 * 2**30),
    (Q.SITE, "1t", 2**40), (Q.SITE, "100b", 100), (Q.SITE, "0.5g", 2**29),
])
def test_jsub_resource_and_site_sizes_are_binary_in_either_case(dialect: Q.Memory, text: str, value: int) -> None:
    assert Q.parse_memory(text, dialect) == value


def test_a_value_too_large_for_any_dialect_is_an_error_not_a_crash() -> None:
    for dialect in (Q.SGE, Q.JSUB_MEM, Q.JSUB_RESOURCE, Q.SITE):
        with pytest.raises(Q.QuantityError):
            Q.parse_memory("9" * 5000 + ("k" if dialect is Q.JSUB_MEM else ""), dialect)
    with pytest.raises(Q.QuantityError):
        Q.parse_memory("9" * 400 + ".5G", Q.SGE)


@pytest.mark.parametrize("n,text", [(512 * 2**20, "512M"), (1.5 * 2**30, "1.5G"), (300 * 1024, "300K"), (12, "12"),
                                    (2**40, "1024G")])
def test_human(n: float, text: str) -> None:
    assert Q.human(n) == text
