"""Exchange-time schedules of the deployments and the market-day gate's calendar logic."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from core.errors import ConfigError
from pipelines.deployments import SCHEDULES, FlowSchedule, holiday_rrule, load_flow
from pipelines.flows.gate import exchange_day, market_day

THANKSGIVING = date(2026, 11, 26)


def _spec(flow: str) -> FlowSchedule:
    return next(spec for spec in SCHEDULES if spec.flow == flow)


def test_every_flow_has_a_deployment_and_the_stated_cadence() -> None:
    assert {spec.flow for spec in SCHEDULES} == {
        "ingest",
        "collect_trades",
        "train",
        "retrain",
        "evaluate_ab",
        "monitor",
        "optimize",
        "evaluate",
        "screen",
    }
    assert _spec("screen").cron == "0 8 * * 1-5"  # before the 09:30 open
    assert _spec("ingest").cron == "5 10-16 * * 1-5"
    assert _spec("monitor").cron == "20 10-16 * * 1-5"
    assert _spec("retrain").cron == "15 17 * * 1-5"  # after the 16:00 close
    assert _spec("optimize").cron == "30 18 * * 5"
    assert _spec("train").cron is None


def test_cron_hours_are_compacted_into_ranges() -> None:
    spec = FlowSchedule("x", "m", "d", 0, (9, 10, 11, 14, 16, 17))
    assert spec.cron == "0 9-11,14,16-17 * * 1-5"


def test_holiday_runs_are_excluded_from_the_rrule() -> None:
    rule = holiday_rrule(_spec("ingest"), date(2026, 11, 20), horizon_days=40)
    assert rule.startswith("DTSTART:20261120T000000\nRRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;")
    excluded = rule.split("EXDATE:")[1].split(",")
    assert excluded[0] == "20261126T100500"
    assert len(excluded) == 7 * 2  # Thanksgiving and Christmas, seven session runs each
    weekly = holiday_rrule(_spec("optimize"), date(2026, 11, 20), horizon_days=40)
    assert "EXDATE:20261225T183000" in weekly  # Christmas 2026 is a Friday
    with pytest.raises(ConfigError, match="on demand"):
        holiday_rrule(_spec("train"), date(2026, 11, 20))


def test_market_day_reasons() -> None:
    assert market_day(date(2026, 11, 25)).is_session
    holiday = market_day(THANKSGIVING)
    assert not holiday.is_session
    assert "market holiday" in holiday.reason
    assert "Saturday" in market_day(date(2026, 11, 28)).reason


def test_exchange_day_is_new_york_date() -> None:
    # 02:00 UTC on the 27th is still the evening of the 26th in New York
    assert exchange_day(datetime(2026, 11, 27, 2, 0, tzinfo=UTC)) == THANKSGIVING


def test_a_flow_module_not_written_yet_is_reported_missing() -> None:
    spec = FlowSchedule("nothing", "pipelines.flows.not_written_yet", "x", None)
    assert load_flow(spec) is None
    found = load_flow(_spec("evaluate_ab"))
    assert found is not None
    assert found.name == "evaluate_ab"
