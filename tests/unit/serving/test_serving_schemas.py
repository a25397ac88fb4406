"""The request models refuse every kind of bad input, naming the field."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from serving.schemas import DecideRequest, FeatureError, check_features

GOOD_SIGNAL = {
    "symbol": "AAPL",
    "side": "buy",
    "strategy": "momentum",
    "timestamp": "2013-05-02T20:00:00Z",
    "price": 60.5,
}


def _body(signal: dict[str, object] | None = None, features: str = '{"rsi_14": 1}') -> str:
    return f'{{"signal": {json.dumps(signal or GOOD_SIGNAL)}, "features": {features}}}'


def _locations(text: str) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        DecideRequest.model_validate_json(text)
    return [tuple(error["loc"]) for error in caught.value.errors()]


def test_a_valid_request_parses_with_ints_floats_and_nulls() -> None:
    request = DecideRequest.model_validate_json(
        _body(features='{"rsi_14": 1, "atr_14": 2.5, "sent_mean_1d": null}')
    )
    assert request.feature_values() == {"rsi_14": 1.0, "atr_14": 2.5, "sent_mean_1d": None}
    assert request.signal.to_signal().signal_id


def test_the_schema_names_every_catalogue_feature_as_an_optional_property() -> None:
    from features.catalogue import feature_names

    schema = DecideRequest.model_json_schema()
    features = schema["$defs"]["Features"]
    assert sorted(features["properties"]) == sorted(feature_names())
    assert features.get("additionalProperties") is False
    assert "required" not in features


def test_names_outside_the_catalogue_are_refused_by_name() -> None:
    assert ("features", "zzz") in _locations(_body(features='{"zzz": 1}'))


def test_catalogue_features_the_models_do_not_take_are_accepted_not_unknown() -> None:
    values = check_features({"a": 1.0, "pos_symbol_held": 0.0}, ["a"], known={"pos_symbol_held"})
    assert values == [1.0]


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"side": "hold"}, ("signal", "side")),
        ({"price": -1.0}, ("signal", "price")),
        ({"price": 0}, ("signal", "price")),
        ({"price": "60.5"}, ("signal", "price")),
        ({"timestamp": "2013-05-02T20:00:00"}, ("signal", "timestamp")),
        ({"symbol": ""}, ("signal", "symbol")),
        ({"colour": "red"}, ("signal", "colour")),
    ],
)
def test_bad_signal_fields_are_named(change: dict[str, object], location: tuple[str, ...]) -> None:
    assert location in _locations(_body({**GOOD_SIGNAL, **change}))


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", '"1.0"', "true", "[1]"])
def test_non_finite_or_non_numeric_features_are_named(value: str) -> None:
    assert ("features", "rsi_14") in _locations(_body(features=f'{{"rsi_14": {value}}}'))


def test_a_missing_signal_and_unknown_top_level_keys_are_refused() -> None:
    assert ("signal",) in _locations('{"features": {}}')
    assert ("feature",) in _locations(_body().replace('"features"', '"feature"'))


def test_check_features_orders_values_and_maps_null_to_nan() -> None:
    values = check_features({"b": 2.0, "a": 1, "atr_14": 0.5, "c": None}, ["a", "atr_14", "b", "c"])
    assert values[:3] == [1.0, 0.5, 2.0]
    assert math.isnan(values[3])


def test_check_features_lists_missing_and_unknown_names() -> None:
    with pytest.raises(FeatureError) as caught:
        check_features({"a": 1.0, "zzz": 2.0}, ["a", "b"])
    error = caught.value
    assert error.field == "features.b"
    assert error.http_status == 422
    kinds = {(problem["loc"][1], problem["type"]) for problem in error.problems}
    assert kinds == {("b", "missing"), ("zzz", "unknown")}


@pytest.mark.parametrize("bad", [math.inf, -math.inf, "x", True])
def test_check_features_refuses_non_numbers_from_python_callers(bad: object) -> None:
    with pytest.raises(FeatureError) as caught:
        check_features({"a": bad, "atr_14": 1.0}, ["a", "atr_14"])  # type: ignore[dict-item]
    assert caught.value.field == "features.a"


@pytest.mark.parametrize("atr", [0.0, -1.0, None])
def test_exits_need_a_positive_atr(atr: float | None) -> None:
    with pytest.raises(FeatureError) as caught:
        check_features({"atr_14": atr}, ["atr_14"])
    assert caught.value.field == "features.atr_14"
