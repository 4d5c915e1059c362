"""SLO spec files: parsing (YAML and JSON) and validation errors that name the file, the
SLO and the field."""

from __future__ import annotations

import json

import pytest

from analyzer.slo import SloSpecError, load_slo_spec
from analyzer.timeparse import NS_PER_DAY, NS_PER_MINUTE

SPEC_EXAMPLE = """\
slos:
  - name: checkout-availability
    service: frontend
    operation: "POST /checkout"      # span name, or http.route / rpc.method value
    sli: availability                 # or: latency (then threshold_ms is required)
    threshold_ms: 300
    objective: 99.5                   # percent of good events
    window: 30d
"""


def errors_of(text: str, source: str = "slo.yaml") -> list[str]:
    with pytest.raises(SloSpecError) as info:
        load_slo_spec(text, source)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == "; ".join(info.value.errors)
    assert "\n" not in str(info.value)  # the CLI prints it as one line
    return list(info.value.errors)


def one_slo(**fields: object) -> str:
    base: dict[str, object] = {
        "name": "checkout-availability",
        "service": "frontend",
        "operation": "POST /checkout",
        "sli": "availability",
        "objective": 99.5,
        "window": "30d",
    }
    base.update(fields)
    return json.dumps({"slos": [{k: v for k, v in base.items() if v is not None}]})


def test_spec_example_parses() -> None:
    spec = load_slo_spec(SPEC_EXAMPLE, "slo.yaml")
    (slo,) = spec.slos
    assert slo.name == "checkout-availability"
    assert slo.service == "frontend"
    assert slo.operation == "POST /checkout"
    assert slo.sli == "availability"
    assert slo.threshold_ms == 300  # allowed, and ignored, for availability
    assert slo.objective == 99.5
    assert slo.window == "30d"
    assert slo.window_ns == 30 * NS_PER_DAY
    assert spec.source_name == "slo.yaml"


def test_json_spec_and_latency() -> None:
    spec = load_slo_spec(one_slo(sli="latency", threshold_ms=250.5, window="90m"), "slo.json")
    (slo,) = spec.slos
    assert slo.sli == "latency"
    assert slo.threshold_ms == 250.5
    assert slo.threshold_ns == 250_500_000
    assert slo.window_ns == 90 * NS_PER_MINUTE


def test_objective_fraction_is_exact() -> None:
    (slo,) = load_slo_spec(one_slo(objective=99.9), "s").slos
    assert 1 - slo.objective_fraction == pytest.approx(0.001, abs=0)
    assert str(1 - slo.objective_fraction) == "1/1000"


def test_integer_objective_is_a_float_in_reports() -> None:
    (slo,) = load_slo_spec(one_slo(objective=99), "s").slos
    assert slo.objective == 99.0 and isinstance(slo.objective, float)


def test_missing_field() -> None:
    assert errors_of(one_slo(service=None)) == [
        'slo.yaml: slo "checkout-availability": service is required'
    ]


def test_missing_name_is_named_by_index() -> None:
    text = json.dumps(
        {
            "slos": [
                json.loads(one_slo())["slos"][0],
                {"service": "frontend", "operation": "x", "sli": "availability",
                 "objective": 99, "window": "7d"},
            ]
        }
    )  # fmt: skip
    assert errors_of(text) == ["slo.yaml: slo #2: name is required"]


def test_bad_sli() -> None:
    assert errors_of(one_slo(sli="throughput")) == [
        'slo.yaml: slo "checkout-availability": sli must be availability or latency, '
        "got 'throughput'"
    ]


def test_latency_without_threshold() -> None:
    assert errors_of(one_slo(sli="latency")) == [
        'slo.yaml: slo "checkout-availability": threshold_ms is required when sli is latency'
    ]


@pytest.mark.parametrize("threshold", [0, -5, "300ms", True])
def test_bad_threshold(threshold: object) -> None:
    (error,) = errors_of(one_slo(sli="latency", threshold_ms=threshold))
    assert error.startswith('slo.yaml: slo "checkout-availability": threshold_ms must be')


@pytest.mark.parametrize("window", ["30 days", "1mo", "-7d", "", "30"])
def test_bad_window(window: str) -> None:
    (error,) = errors_of(one_slo(window=window))
    assert error.startswith('slo.yaml: slo "checkout-availability": window invalid duration')
    assert "30d" in error  # says what is accepted


def test_window_must_be_a_string_and_long_enough() -> None:
    (error,) = errors_of(one_slo(window=30))
    assert error == (
        'slo.yaml: slo "checkout-availability": window must be a duration such as 30d, 7d '
        "or 1h, got 30"
    )
    (error,) = errors_of(one_slo(window="30s"))
    assert error == "slo.yaml: slo \"checkout-availability\": window must be at least 1m, got '30s'"


@pytest.mark.parametrize("objective", [100, 0, 150, -1, 100.0])
def test_objective_out_of_range(objective: float) -> None:
    (error,) = errors_of(one_slo(objective=objective))
    assert error == (
        f'slo.yaml: slo "checkout-availability": objective must be above 0 and below 100 '
        f"(percent), got {objective!r}"
    )


@pytest.mark.parametrize("objective", ["99.5%", True, ".inf"])
def test_objective_not_a_number(objective: object) -> None:
    text = one_slo(objective=objective)
    if objective == ".inf":
        text = SPEC_EXAMPLE.replace("99.5", ".inf")
    (error,) = errors_of(text)
    assert error.startswith('slo.yaml: slo "checkout-availability": objective must be a number')


def test_every_mistake_is_reported_at_once() -> None:
    text = """\
slos:
  - name: a
    service: frontend
    operation: x
    sli: latency
    objective: 100
    window: 1 month
  - name: a
    service: ""
    operation: y
    sli: availability
    objective: 99
    window: 7d
"""
    assert errors_of(text, "team/slo.yaml") == [
        'team/slo.yaml: slo "a": threshold_ms is required when sli is latency',
        'team/slo.yaml: slo "a": objective must be above 0 and below 100 (percent), got 100',
        "team/slo.yaml: slo \"a\": window invalid duration '1 month': expected a number and "
        "a unit, e.g. 30d, 7d, 1h, 90m, 90s, 250ms, or a sum like 1h30m "
        "(units: ns, us, ms, s, m, h, d, w)",
        "team/slo.yaml: slo \"a\": service must be a non-empty string, got ''",
        'team/slo.yaml: slo "a": name is used by an earlier SLO; names must be unique',
    ]


def test_unknown_field_suggests_the_right_one() -> None:
    assert errors_of(one_slo(objectve=99)) == [
        'slo.yaml: slo "checkout-availability": objectve is not a known field (line 1) '
        '(did you mean "objective"?)'
    ]


def test_description_is_allowed() -> None:
    (slo,) = load_slo_spec(one_slo(description="Checkout works"), "s").slos
    assert slo.description == "Checkout works"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "slo.yaml: the file is empty; expected a 'slos:' list"),
        ("- name: a\n", "slo.yaml: expected a mapping with a 'slos:' list at the top level"),
        (
            "slo:\n  - name: a\n",
            "slo.yaml: expected a mapping with a 'slos:' list at the top level",
        ),
        ("slos: []\n", "slo.yaml: slos must be a non-empty list of SLOs"),
        ("slos: {name: a}\n", "slo.yaml: slos must be a non-empty list of SLOs"),
    ],
)
def test_bad_top_level(text: str, message: str) -> None:
    assert errors_of(text) == [message]


def test_unknown_top_level_field() -> None:
    text = SPEC_EXAMPLE + "version: 2\n"
    assert errors_of(text) == ["slo.yaml: version is not a known top-level field (only slos)"]


def test_slo_that_is_not_a_mapping() -> None:
    assert errors_of("slos:\n  - just a string\n") == [
        "slo.yaml: slo #1: expected a mapping with the fields name, service, operation, sli, "
        "objective, window, got str"
    ]


def test_yaml_syntax_error_names_the_line() -> None:
    (error,) = errors_of("slos:\n  - name: a\n    service: [unclosed\n", "slo.yaml")
    assert error.startswith("slo.yaml: line ")
    assert "invalid YAML" in error


def test_json_syntax_error_names_the_line() -> None:
    (error,) = errors_of('{"slos": [\n  {"name": "a",}\n]}', "slo.json")
    assert error.startswith("slo.json: line 2 column ")
    assert "invalid JSON" in error


def test_hostile_name_cannot_break_the_error_line() -> None:
    (error,) = errors_of(one_slo(name="x\ny\x1b[2J", sli="latency"))
    assert error == 'slo.yaml: slo "x\\ny\\x1b[2J": threshold_ms is required when sli is latency'
