"""Deployments of every Tradewind flow, their schedules in exchange time, and where the
Prefect API lives.

Schedules. Each flow has a cron-style spec in America/New_York (`FlowSchedule.cron`):
screen runs before the open, ingest and monitor during the session, the learning and A/B
flows after the close, optimize once a week after Friday's close, and train on demand
only. Prefect's cron schedules cannot skip dates, so each spec is registered as the
equivalent RRule with an EXDATE for every NYSE holiday (`core.calendar`) in the next
`HORIZON_DAYS`; the deployment's description carries the cron line and the horizon.
`tradewind deploy` rebuilds the schedules every time it starts, so the horizon rolls
forward. The market-day gate task (`pipelines/flows/gate.py`) is the second line of
defence for runs started by hand or after the horizon.

Stores. Prefect keeps its database under `<data_dir>/prefect` (`pipelines.runtime`), so the
flows run by `tradewind` commands, the deployments and the Prefect UI started by
`tradewind ui` all read and write the same runs. `tradewind ui` records its server's URL
in `<data_dir>/prefect/server.json`; `tradewind deploy` serves against that server (its
scheduler is what turns schedules into runs)."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.settings import Settings
from core.utc import utc_now

TIMEZONE = "America/New_York"
HORIZON_DAYS = 370
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR")
_CRON_DAY = {"MO": "1", "TU": "2", "WE": "3", "TH": "4", "FR": "5", "SA": "6", "SU": "0"}


@dataclass(frozen=True, slots=True)
class FlowSchedule:
    """One deployment: which flow, when (exchange time), and why then."""

    flow: str  # the flow's name in Prefect
    module: str  # where the flow is defined (see `load_flow`)
    deployment: str  # deployment name shown in the UI
    minute: int | None  # None: on demand only (no schedule)
    hours: tuple[int, ...] = ()
    days: tuple[str, ...] = WEEKDAYS
    purpose: str = ""

    @property
    def scheduled(self) -> bool:
        return self.minute is not None

    @property
    def cron(self) -> str | None:
        if self.minute is None:
            return None
        days = ",".join(_CRON_DAY[day] for day in self.days)
        if self.days == WEEKDAYS:
            days = "1-5"
        return f"{self.minute} {_cron_field(self.hours)} * * {days}"

    def run_times(self, day: date) -> list[datetime]:
        """Local (naive, exchange time) run times on `day`, if the spec runs that weekday."""
        if self.minute is None or list(_CRON_DAY)[day.weekday()] not in self.days:
            return []
        return [datetime(day.year, day.month, day.day, hour, self.minute) for hour in self.hours]  # noqa: DTZ001


def _cron_field(values: tuple[int, ...]) -> str:
    """Cron's compact form: consecutive runs as ranges (10,11,12,16 → 10-12,16)."""
    parts: list[str] = []
    ordered = sorted(values)
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if value is not None:
            start = previous = value
    return ",".join(parts)


SESSION_HOURS = (10, 11, 12, 13, 14, 15, 16)  # 16:xx picks up the closing bar

SCHEDULES: tuple[FlowSchedule, ...] = (
    FlowSchedule(
        "screen", "pipelines.flows.screen", "pre-market", 0, (8,),
        purpose="rank the universe on yesterday's session and write the day's watchlist",
    ),
    FlowSchedule(
        "ingest", "pipelines.flows.ingest", "during-session", 5, SESSION_HOURS,
        purpose="new bars, features and Feast materialization every hour of the session",
    ),
    FlowSchedule(
        "monitor", "pipelines.flows.monitor", "during-session", 20, SESSION_HOURS,
        purpose="drift, calibration and latency checks every hour of the session",
    ),
    FlowSchedule(
        "collect_trades", "pipelines.flows.collect_trades", "after-close",
        30, (16,), purpose="closed trades with entry features and outcomes into the store",
    ),
    FlowSchedule(
        "evaluate_ab", "pipelines.flows.evaluate_ab", "after-close", 45, (16,),
        purpose="champion vs challenger on live trades: promote, retire or roll back",
    ),
    FlowSchedule(
        "retrain", "pipelines.flows.retrain", "after-close", 15, (17,),
        purpose="candidates on the newest data; a better one becomes challenger",
    ),
    FlowSchedule(
        "optimize", "pipelines.flows.optimize", "weekly-after-close", 30, (18,),
        days=("FR",), purpose="Optuna search over strategy parameters; writes a proposal",
    ),
    FlowSchedule(
        "train", "pipelines.flows.train", "on-demand", None,
        purpose="the four models from scratch (first versions become champion)",
    ),
    FlowSchedule(
        "evaluate", "pipelines.flows.evaluate", "on-demand", None,
        purpose="walk-forward evaluation of the decision policy on the held-out symbols",
    ),
)


def holiday_rrule(spec: FlowSchedule, start: date, horizon_days: int = HORIZON_DAYS) -> str:
    """The spec as an RRule (interpreted in exchange time) minus every NYSE holiday in
    [start, start + horizon]."""
    from core.calendar import MarketCalendar

    if spec.minute is None:
        raise ConfigError(f"flow {spec.flow} is on demand only", where="deployments")
    hours = ",".join(str(hour) for hour in spec.hours)
    lines = [
        f"DTSTART:{start:%Y%m%d}T000000",
        f"RRULE:FREQ=WEEKLY;BYDAY={','.join(spec.days)};BYHOUR={hours};"
        f"BYMINUTE={spec.minute};BYSECOND=0",
    ]
    excluded = [
        moment
        for day in MarketCalendar().holidays(start, start + timedelta(days=horizon_days))
        for moment in spec.run_times(day)
    ]
    if excluded:
        lines.append("EXDATE:" + ",".join(f"{moment:%Y%m%dT%H%M%S}" for moment in excluded))
    return "\n".join(lines)


def load_flow(spec: FlowSchedule) -> Any | None:
    """The flow named `spec.flow` in its module (imported lazily: the learning-loop flows
    live beside these), or None when that module or flow does not exist."""
    from prefect import Flow

    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and spec.module.startswith(exc.name):
            return None
        raise
    for value in vars(module).values():
        if isinstance(value, Flow) and value.name == spec.flow:
            return value
    return None


def data_parameters(settings: Settings) -> dict[str, Any]:
    """The user's data, as flow parameters: source, its path, symbols and timeframe
    (`settings.data`, `settings.symbols`)."""
    data = settings.data
    return {
        "source": data.source,
        "path": str(data.path) if data.path is not None else None,
        "symbols": list(settings.symbols),
        "timeframe": data.timeframe,
    }


def flow_parameters(
    accepted: set[str], settings: Settings, *, scheduled: bool
) -> dict[str, Any]:
    """The parameters a deployment runs a flow with: the user's data for every parameter
    the flow takes, and the market-day gate on scheduled runs."""
    chosen = {key: value for key, value in data_parameters(settings).items() if key in accepted}
    if chosen.get("path") is None:
        chosen.pop("path", None)
    if scheduled and "market_days_only" in accepted:
        chosen["market_days_only"] = True
    return chosen


def build_deployments(
    *,
    today: date | None = None,
    horizon_days: int = HORIZON_DAYS,
    only: list[str] | None = None,
    settings: Settings | None = None,
) -> tuple[list[Any], list[str]]:
    """RunnerDeployments of every flow that exists, and the names of those that do not;
    each runs on the data of `settings` (default: `load_settings()`)."""
    from prefect.schedules import RRule

    from core.settings import load_settings

    settings = settings or load_settings()
    today = today or utc_now().date()
    deployments: list[Any] = []
    missing: list[str] = []
    for spec in SCHEDULES:
        if only and spec.flow not in only:
            continue
        flow = load_flow(spec)
        if flow is None:
            missing.append(spec.flow)
            continue
        schedules = []
        description = spec.purpose
        if spec.scheduled:
            schedules.append(RRule(holiday_rrule(spec, today, horizon_days), timezone=TIMEZONE))
            description = (
                f"{spec.purpose}. Cron `{spec.cron}` ({TIMEZONE}), NYSE holidays excluded "
                f"until {today + timedelta(days=horizon_days)}."
            )
        parameters = flow_parameters(
            set(flow.parameters.properties), settings, scheduled=spec.scheduled
        )
        shown = ", ".join(f"{key}={value}" for key, value in parameters.items())
        description = f"{description} Runs with {shown}." if shown else description
        deployments.append(
            flow.to_deployment(
                name=spec.deployment,
                schedules=schedules,
                description=description,
                tags=["tradewind", spec.deployment],
                parameters=parameters,
            )
        )
    return deployments, missing


# -- where the Prefect server of `tradewind ui` is ----------------------------------


def server_record(settings: Settings) -> Path:
    """Where `tradewind ui` writes the URL of the Prefect server it started."""
    from pipelines.runtime import prefect_home

    return prefect_home(settings.paths.data_dir) / "server.json"


def recorded_server(settings: Settings) -> str | None:
    """The API URL `tradewind ui` recorded, if that server still answers."""
    import httpx

    record = server_record(settings)
    if not record.is_file():
        return None
    try:
        url = str(json.loads(record.read_text(encoding="utf-8"))["api_url"])
        response = httpx.get(f"{url}/health", timeout=2.0)
    except (OSError, ValueError, KeyError, httpx.HTTPError):
        return None
    return url if response.status_code == 200 else None
