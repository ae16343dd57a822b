"""Issue 2, the pure model of tenants.yaml: property-based tests with independent oracles."""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orca_platform.model.errors import InputError, Problem
from orca_platform.model.quantities import parse_bytes
from orca_platform.model.tenants import parse_tenants
from orca_platform.plan.addressing import assignable

SOURCE = "tenants.test.yaml"
LETTERS = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
ILB_NET = ipaddress.IPv4Network("10.40.8.0/24")
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- oracles, written from the rules in tenants.yaml's header, not from the code ------------------------------------


def is_valid_clinic_id(text: str) -> bool:
    """A DNS label of 3 to 40 characters: a-z, 0-9 and single hyphens, starting with a letter, not ending in '-'."""
    return (
        3 <= len(text) <= 40
        and text[0] in LETTERS
        and text[-1] in LETTERS + DIGITS
        and set(text) <= set(LETTERS + DIGITS + "-")
        and "--" not in text
    )


def binary_quantity_bytes(text: str) -> Decimal | None:
    """Exact bytes of '<number><Ki|Mi|Gi|Ti>' with a positive number; None when the text is not of that form."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti)", text.strip())
    if not m or Decimal(m[1]) <= 0:
        return None
    return Decimal(m[1]) * UNITS[m[2]]


# --- generators -----------------------------------------------------------------------------------------------------


@st.composite
def _id_candidates(draw: st.DrawFn) -> str:
    segments = draw(st.lists(st.text(LETTERS + DIGITS, min_size=1, max_size=9), min_size=1, max_size=5))
    return (draw(st.sampled_from(LETTERS)) + "-".join(segments))[:40].rstrip("-")


def clinic_ids() -> st.SearchStrategy[str]:
    """Valid ids by construction: a letter, then alphanumeric runs joined by single hyphens, 3 to 40 long."""
    return _id_candidates().filter(lambda s: len(s) >= 3)


names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("さくら内科クリニック整形外科"),
    min_size=1,
    max_size=100,
).filter(lambda s: s.strip() != "")
quantities = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 4096), st.sampled_from(["Mi", "Gi", "Ti"]))
cidr_pool = [f"192.168.{i}.0/24" for i in range(1, 60)]


@st.composite
def clinic_lists(draw: st.DrawFn, min_size: int = 1, max_size: int = 8, complete: bool = False) -> list[dict[str, Any]]:
    """Valid clinics with unique ids, hostnames and addresses; `complete` sets every optional unique field."""
    ids = draw(st.lists(clinic_ids(), min_size=min_size, max_size=max_size, unique=True))
    ips = draw(st.lists(st.integers(4, 254), min_size=len(ids), max_size=len(ids), unique=True))
    # Each clinic its own networks: overlapping ones are refused unless declared shared (tested below).
    networks = iter(draw(st.permutations(cidr_pool)))
    clinics = []
    for n, ident in enumerate(ids):
        doc: dict[str, Any] = {
            "id": ident,
            "name": draw(names),
            "size": draw(st.sampled_from(["small", "medium", "large"])),
            "volumeSize": draw(quantities),
            "sourceCidrs": [next(networks) for _ in range(draw(st.integers(1, 3)))],
            "state": draw(st.sampled_from(["active", "suspended"])),
        }
        if complete or draw(st.booleans()):
            doc["hostname"] = f"h{n}-{ident}"[:60].rstrip("-") + ".orca.example.jp"
        if complete or draw(st.booleans()):
            doc["privateIp"] = str(ILB_NET.network_address + ips[n])
        clinics.append(doc)
    return clinics


def one_clinic(**fields: Any) -> dict[str, Any]:
    doc = {"id": "sakura-naika", "name": "さくら内科", "size": "small", "volumeSize": "32Gi"}
    doc["sourceCidrs"] = ["192.168.10.0/24"]
    doc.update(fields)
    return {"clinics": [doc]}


def problems_of(raw: Any) -> list[Problem]:
    with pytest.raises(InputError) as info:
        parse_tenants(raw, SOURCE)
    return info.value.problems


# --- properties -----------------------------------------------------------------------------------------------------


@FAST
@given(clinic_lists())
def test_valid_clinic_lists_round_trip(clinics: list[dict[str, Any]]) -> None:
    parsed = parse_tenants({"clinics": clinics}, SOURCE)
    assert [c.id for c in parsed.clinics] == [c["id"] for c in clinics]
    for model, raw in zip(parsed.clinics, clinics, strict=True):
        assert model.name == raw["name"]
        assert model.source_cidrs == raw["sourceCidrs"]
        assert model.volume_bytes == binary_quantity_bytes(raw["volumeSize"])
        assert model.hostname == raw.get("hostname")
        assert model.private_ip == raw.get("privateIp")
        assert model.state.value == raw["state"]
    # What the model writes back is a tenants file that parses to the same model.
    dumped = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert parse_tenants(dumped, SOURCE) == parsed


@FAST
@given(st.one_of(clinic_ids(), st.text("abz09-_.AZé \t", max_size=45)))
@example("ab")  # two characters: one short
@example("a" * 41)  # one too long
@example("9lives")  # starts with a digit
@example("sakura--naika")  # double hyphen
@example("sakura-")  # ends with a hyphen
@example("Sakura")  # upper case
def test_clinic_id_must_be_a_dns_label(ident: str) -> None:
    raw = one_clinic(id=ident)
    if is_valid_clinic_id(ident):
        assert parse_tenants(raw, SOURCE).clinics[0].id == ident
    else:
        problems = problems_of(raw)
        assert [p.field for p in problems] == ["id"], problems
        assert problems[0].source == SOURCE
        assert problems[0].clinic == (ident or "#1")


@pytest.mark.parametrize("field", ["id", "hostname"])
def test_a_trailing_newline_is_not_a_dns_name(field: str) -> None:
    # `id: |` or a quoted "\n" in YAML gives such a value; Kubernetes would refuse namespace 'orca-sakura-naika\n'
    # only after the first resources were created.
    value = "sakura-naika\n" if field == "id" else "sakura.orca.example.jp\n"
    problems = problems_of(one_clinic(**{field: value}))
    assert [p.field for p in problems] == [field]


quantity_texts = st.one_of(
    st.builds(
        lambda n, frac, unit: f"{n}{frac}{unit}",
        st.integers(0, 10**6),
        st.sampled_from(["", ".5", ".25", ".0", "."]),
        st.sampled_from(["Ki", "Mi", "Gi", "Ti", "G", "GB", "gi", "Gib", "Pi", "k", "M", "", "Gi ", " Gi"]),
    ),
    st.text("0123456789.KMGTPEikB -", max_size=10),
)


@FAST
@given(quantity_texts)
@example("10GB")
@example("10G")
@example("0Gi")
@example("1.5Gi")
@example("32Gi")
def test_volume_quantities_parse_iff_binary_suffix_form(text: str) -> None:
    expected = binary_quantity_bytes(text)
    if expected is None:
        with pytest.raises(ValueError, match="must be"):
            parse_bytes(text)
        problems = problems_of(one_clinic(volumeSize=text))
        assert [(p.clinic, p.field) for p in problems] == [("sakura-naika", "volumeSize")]
    else:
        # Whole bytes: a fraction of a byte may be rounded (up, as Kubernetes does; see the test below).
        assert abs(parse_bytes(text) - expected) < 1


def test_an_accepted_quantity_is_at_least_one_byte() -> None:
    assert parse_bytes("0.0001Ki") >= 1


@FAST
@given(clinic_lists(min_size=2, complete=True), st.sampled_from(["id", "hostname", "privateIp"]), st.data())
def test_duplicates_are_detected_whatever_their_position(
    clinics: list[dict[str, Any]], field: str, data: st.DataObject
) -> None:
    first, second = sorted(data.draw(st.lists(st.integers(0, len(clinics) - 1), min_size=2, max_size=2, unique=True)))
    original_first_id = clinics[first]["id"]
    clinics[second][field] = clinics[first][field]
    problems = problems_of({"clinics": clinics})
    reported = clinics[second]["id"]
    # A repeated id names the other entry by its position (its id is the same); other fields name the other clinic.
    other = f"entry #{first + 1}" if field == "id" else f"clinic '{original_first_id}'"
    assert any(p.field == field and p.clinic == reported and other in p.message for p in problems), problems


@FAST
@given(clinic_lists(min_size=1, max_size=4), st.data())
def test_a_retired_id_is_never_reused(clinics: list[dict[str, Any]], data: st.DataObject) -> None:
    reused = data.draw(st.sampled_from([c["id"] for c in clinics]))
    problems = problems_of({"clinics": clinics, "retiredClinicIds": ["some-old-clinic", reused]})
    assert [(p.clinic, p.field) for p in problems] == [(reused, "id")]
    assert "retired" in problems[0].message


@FAST
@given(clinic_lists(min_size=1, max_size=4), st.data())
def test_an_unknown_key_is_named_with_its_clinic(clinics: list[dict[str, Any]], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(clinics) - 1))
    key = data.draw(st.sampled_from(["volumesize", "sourceCIDRs", "replicas", "hostName", "ip"]))
    clinics[index][key] = "x"
    problems = problems_of({"clinics": clinics})
    assert any(
        p.field == key and p.clinic == clinics[index]["id"] and "not a known field" in p.message for p in problems
    ), problems


# --- plain cases ----------------------------------------------------------------------------------------------------


def test_problem_names_file_clinic_and_field() -> None:
    text = str(Problem("tenants.yaml", "privateIp", "is wrong", "sakura-naika"))
    assert text == "tenants.yaml: clinic 'sakura-naika': field 'privateIp': is wrong"


def test_an_empty_or_clinicless_file_is_refused() -> None:
    for raw in (None, {}, {"clinics": []}, [], "clinics"):
        problems = problems_of(raw)
        assert problems and all(p.source == SOURCE for p in problems)


@pytest.mark.parametrize(
    ("offset", "ok"),
    [(0, False), (1, False), (2, False), (3, False), (4, True), (128, True), (254, True), (255, False), (256, False)],
)
def test_azure_reserves_the_first_four_and_the_last_address(offset: int, ok: bool) -> None:
    assert assignable(ILB_NET, ILB_NET.network_address + offset) is ok
