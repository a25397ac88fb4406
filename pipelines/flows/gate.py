"""The market-day gate: the first task of every scheduled flow. It asks the exchange
calendar (`core.calendar`) whether the day, in exchange time, is a trading session, and
when it is not, the flow stops cleanly with the reason recorded in its result and in a
Prefect markdown artifact, so a skipped run in the UI says why it did nothing.

The deployments also leave holidays out of their schedules (`pipelines/deployments.py`);
this gate is what keeps a manual or late-registered run on a holiday from trading on
stale data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from prefect import task

from core.calendar import EXCHANGE, EXCHANGE_TZ, MarketCalendar
from core.utc import utc_datetime, utc_now


@dataclass(frozen=True, slots=True)
class MarketDay:
    day: date
    is_session: bool
    reason: str


def exchange_day(moment: datetime | None = None) -> date:
    """The calendar day in New York at `moment` (now when None; naive means UTC)."""
    return utc_datetime(moment or utc_now()).astimezone(EXCHANGE_TZ).date()


def market_day(day: date) -> MarketDay:
    """Whether `day` is an NYSE session, and if not, why (weekend or holiday)."""
    if day.weekday() >= 5:
        return MarketDay(day, False, f"{day.isoformat()} is a {day.strftime('%A')}: no session")
    if MarketCalendar().is_session(day):
        return MarketDay(day, True, f"{day.isoformat()} is an {EXCHANGE} session")
    return MarketDay(day, False, f"{day.isoformat()} is an {EXCHANGE} market holiday")


@task(name="market-day-gate", retries=0)
def market_day_gate(as_of: str | None = None, *, flow_name: str = "flow") -> MarketDay:
    """First task of a scheduled flow: is today (or `as_of`, an ISO date) a session?
    Records a markdown artifact with the reason when the flow is skipped."""
    from prefect.artifacts import create_markdown_artifact

    day = date.fromisoformat(as_of) if as_of else exchange_day()
    verdict = market_day(day)
    if not verdict.is_session:
        create_markdown_artifact(
            key=f"{flow_name.replace('_', '-')}-skipped",
            markdown=f"### {flow_name} skipped\n\n{verdict.reason}.",
            description=f"{flow_name} did nothing: {verdict.reason}",
        )
    return verdict
