"""`tradewind` commands for the trading area: `backtest` (ENGINE) and, in the section
marked below, `paper-exchange` and `trade` (EXCHANGE)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.errors import BrokerError, ConfigError
from pipelines.commands.options import SYMBOLS_HELP, SYMBOLS_METAVAR, parse_day, parse_symbols

if TYPE_CHECKING:  # the exchange section's types; imported lazily at run time
    from core.bars import BarCheck
    from core.settings import AlpacaCredentials, Settings
    from serving.client import HttpModelClient
    from trading.closed_trades import ClosedTradeRecord, TradeSink
    from trading.control.kit import ControlKit
    from trading.engine import EngineStats
    from trading.engine_lock import EngineLock
    from trading.ports import BarStream, MarketData, ModelClient, NewsStream
    from trading.service import RecoveringBroker, ServiceConfig, TradingService

console = Console()


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `tradewind` app."""
    app.command()(backtest)
    app.command()(screen)
    register_service_commands(app)


def screen(
    as_of: Annotated[
        str | None, typer.Option(help="Screen the sessions before this date (default: today).")
    ] = None,
    top: Annotated[int, typer.Option(help="How many symbols make the watchlist.", min=1)] = 20,
    watchlist: Annotated[
        Path | None, typer.Option(help="Watchlist JSON to write (default: data dir).")
    ] = None,
) -> None:
    """Rank the stored universe (liquidity, ATR%, relative volume, gap, relative
    strength) and write the day's watchlist, which a running `tradewind trade
    --watchlist` picks up."""
    from core.settings import load_settings
    from pipelines.flows.screen import screen_flow
    from pipelines.runtime import use_prefect_home

    with use_prefect_home(load_settings().paths.data_dir, console_level="WARNING"):
        result = screen_flow(as_of, top=top, watchlist_path=str(watchlist) if watchlist else None)
    _say(f"watchlist of {result['as_of']} in {result['watchlist']}: "
         f"{', '.join(result['symbols'])}")


# ====================================================================== backtest (ENGINE)
def backtest(
    source: Annotated[
        str,
        typer.Option(help="Where bars come from: sp500 (embedded S&P 500 set) | sample (small "
                     "embedded set) | store (the offline bar store `tradewind ingest` fills) "
                     "| parquet | csv (with --path)."),
    ] = "sp500",
    path: Annotated[
        Path | None, typer.Option(help="Parquet/CSV file or folder (with --source parquet|csv).")
    ] = None,
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            metavar=SYMBOLS_METAVAR,
            help=f"Symbols, {SYMBOLS_HELP} (default: with sp500 its held-out symbols, which "
            "training leaves out; otherwise all in the source).",
        ),
    ] = None,
    all_symbols: Annotated[
        bool,
        typer.Option("--all-symbols/--held-out-symbols",
                     help="Every symbol of the source, held-out or not."),
    ] = False,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (inclusive).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (inclusive).")] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help="momentum | mean_reversion | breakout (default: regime selector)."),
    ] = None,
    index_path: Annotated[
        Path | None,
        typer.Option(help="Bar file with an index series (SPY/SPX/COMP/VIX) for market context."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write metrics + equity curve as JSON here.")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML report (plots) here.")
    ] = None,
    journal: Annotated[
        str, typer.Option(help="Journal database URL (default: in memory).")
    ] = "sqlite://",
    repair: Annotated[
        bool, typer.Option(help="Repair bad bars (drop/fill, reported) instead of failing.")
    ] = True,
    model_endpoint: Annotated[
        str | None,
        typer.Option(
            help="URL of a running model service (`tradewind serve`); every signal consults "
            "it and entries are gated on its win probability. Default: rules, ungated."
        ),
    ] = None,
    timeframe: Annotated[
        str | None,
        typer.Option(help="Bar timeframe: 1Min, 5Min, 15Min or 1Day (default: the bars' own "
                     "spacing). Coarser than the bars: they are resampled; the model "
                     "service must serve models of this timeframe."),
    ] = None,
) -> None:
    """Replay historical bars through the trading engine (simulated broker) and print
    trades, win rate, profit factor, Sharpe, max drawdown, exposure. Without
    --model-endpoint the rules client decides and nothing is gated. On the default sp500
    source it trades the held-out symbols (models trained with the defaults never saw
    them), so a gated run is judged out of sample; --all-symbols trades every one."""
    from core.settings import load_settings
    from trading.backtest import run_backtest
    from trading.report import METRIC_KEYS, write_html, write_json
    from trading.strategies import STRATEGIES

    settings = load_settings()
    wanted = parse_symbols(symbols) or None
    parse_day(start, "--start")
    parse_day(end, "--end")
    if strategy is not None and strategy not in STRATEGIES:
        raise ConfigError(
            f"--strategy {strategy!r} is not one of {', '.join(STRATEGIES)}", where="backtest"
        )
    if wanted is None and source == "sp500" and not all_symbols:
        from core.universe import split_universe
        from trading.adapters.sp500.data import SP500MarketData

        wanted = split_universe(SP500MarketData().stocks())[1]
        console.print(f"trading the {len(wanted)} held-out symbols of sp500 "
                      "(--symbols or --all-symbols to choose others)")
    bars, index_bars, repairs = _load_bars(
        source, path, wanted, start, end, index_path, repair, settings, timeframe
    )
    bars, index_bars, timeframe = _bars_of_timeframe(bars, index_bars, timeframe)
    client = _checked_client(settings, model_endpoint, timeframe) if model_endpoint else None
    result = run_backtest(bars, index_bars=index_bars, settings=settings, strategy=strategy,
                          journal_url=journal, model_client=client,
                          gate_enabled=client is not None)  # fmt: skip
    metrics = result.metrics

    table = Table(title=f"backtest · {metrics['strategy']} · {source} · {timeframe}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (*METRIC_KEYS, "final_equity", "bars", "symbols", "start", "end"):
        table.add_row(key, _show(metrics.get(key)))
    table.add_row("repaired bars", str(repairs))
    table.add_row("risk rejections", _show(metrics.get("risk_rejections")))
    table.add_row(
        "replay speed",
        f"{result.bars / result.replay_seconds:,.0f} bars/s "
        f"(features {result.feature_seconds:.2f}s)"
        if result.replay_seconds > 0
        else "—",
    )
    console.print(table)
    if client is not None:
        metrics["model_unavailable"] = _report_model_failures(result.stats, settings)
    if json_out is not None:
        console.print(f"JSON → {write_json(json_out, metrics, result.equity)}")
    if html_out is not None:
        title = (
            f"Tradewind backtest · {metrics['strategy']} · "
            f"{metrics['start'][:10]} → {metrics['end'][:10]}"
        )
        console.print(
            f"HTML → {write_html(html_out, metrics, result.equity, result.trades, title)}"
        )
    result.journal.close()


def _checked_client(settings: Settings, endpoint: str, timeframe: str) -> ModelClient:
    """The service's client, once the service answers, serves a champion of `timeframe`
    bars and takes the token: a replay against a service that cannot answer would only
    count refusals."""
    client = _http_client(settings, endpoint, timeframe)
    client.check()
    return client


def _report_model_failures(stats: EngineStats, settings: Settings) -> int:
    """Signals the service failed to answer mid-run, said loudly on stderr; their count."""
    refused = stats.refusals.get("model_unavailable", 0)
    if stats.model_failures:
        fallback = settings.models.fallback
        outcome = (
            "the rules fallback decided them" if fallback == "rules"
            else f"{refused} entries refused (fallback {fallback})"
        )
        Console(stderr=True).print(
            f"[bold red]model service failures:[/] {stats.model_failures} of {stats.signals} "
            f"signals got no answer from the model service (model_unavailable); {outcome}",
            highlight=False, soft_wrap=True,
        )
    return refused


def _load_bars(
    source: str,
    path: Path | None,
    symbols: list[str] | None,
    start: str | None,
    end: str | None,
    index_path: Path | None,
    repair: bool,
    settings: Settings,
    timeframe: str | None = None,
) -> tuple[object, object, int]:
    import pandas as pd

    from core.symbols import CONTEXT_ONLY_SYMBOLS
    from trading.adapters.registry import market_data
    from trading.adapters.sample.data import SYMBOLS as SAMPLE_SYMBOLS

    wanted = symbols
    config: dict[str, object] = {"type": source}
    if source in ("sample", "sp500"):
        if symbols is not None:
            # The index series come along as market context (both ship the same ones).
            wanted = sorted(set(symbols) | (CONTEXT_ONLY_SYMBOLS & set(SAMPLE_SYMBOLS)))
    elif source in ("parquet", "csv"):
        if path is None:
            raise ConfigError(f"--source {source} needs --path FILE_OR_FOLDER", where="backtest")
        config = {"type": source, "path": path, "repair": repair}
    elif source != "store":
        raise ConfigError(
            f"unknown --source '{source}'; use sample, sp500, store, parquet or csv",
            where="backtest",
        )
    # Intraday files are read as they are (no daily session stamps); `_bars_of_timeframe`
    # then makes the asked timeframe of them.
    read_as = "1Min" if timeframe not in (None, "1Day") and source != "store" else "1Day"
    if source == "store":
        check = _store_check(settings, symbols, start, end)
    else:
        check = market_data(config).history_check(wanted, start, end, read_as)
    index_bars: pd.DataFrame | None = None
    if index_path is not None:
        index_source = market_data({"type": "files", "path": index_path, "repair": repair})
        index_bars = index_source.history_check(None, start, end, read_as).bars
    if check.bars.empty:
        raise ConfigError(
            f"no bars for symbols={symbols or 'all'} between {start or 'the start'} and "
            f"{end or 'the end'} in {source}",
            where="backtest",
        )
    return check.bars, index_bars, len(check.repairs)


def _bars_of_timeframe(
    bars: Any, index_bars: Any, timeframe: str | None
) -> tuple[Any, Any, str]:
    """(bars, index bars, timeframe): the bars' own timeframe when none is asked, else
    the bars made coarser to it (`core.bars.bars_at_timeframe`)."""
    from core.bars import bars_at_timeframe, check_timeframe, timeframe_of

    if timeframe is None:
        return bars, index_bars, timeframe_of(bars["timestamp"])
    check_timeframe(timeframe)
    bars = bars_at_timeframe(bars, timeframe, where="--timeframe")
    if index_bars is not None and len(index_bars):
        index_bars = bars_at_timeframe(index_bars, timeframe, where="--timeframe (index)")
    return bars, index_bars, timeframe


def _store_check(
    settings: Settings, symbols: list[str] | None, start: str | None, end: str | None
) -> BarCheck:
    """The offline bar store's daily bars (stocks plus the index series it holds), as a
    check with nothing repaired: the store holds only validated bars."""
    from core.bars import BarCheck
    from core.symbols import CONTEXT_ONLY_SYMBOLS
    from features.bar_store import BarStore

    store = BarStore(settings.paths.bars_dir)
    if not store.symbols():
        raise ConfigError(
            f"the bar store at {store.root} holds no daily bars; load some with "
            "`tradewind ingest --source sample` (or --source alpaca|parquet|csv)",
            where="backtest",
        )
    wanted = None
    if symbols is not None:
        wanted = sorted(set(symbols) | (CONTEXT_ONLY_SYMBOLS & set(store.symbols())))
    return BarCheck(bars=store.read(symbols=wanted, start=start, end=end))


def _show(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
    return str(value)


# ============================================ paper-exchange and trade (EXCHANGE engineer)
# The EXCHANGE engineer adds `tradewind paper-exchange` and `tradewind trade` here and
# registers them in `register_service_commands`. Nothing above this line needs to change.
def register_service_commands(app: typer.Typer) -> None:
    """Register `paper-exchange` and `trade` (owned by the EXCHANGE engineer)."""
    app.command("paper-exchange")(paper_exchange)
    app.command("trade")(trade)


def paper_exchange(
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            metavar=SYMBOLS_METAVAR,
            help=f"Symbols to replay, {SYMBOLS_HELP} (default: all stored).",
        ),
    ] = None,
    start: Annotated[str | None, typer.Option(help="First bar to replay (ISO date).")] = None,
    end: Annotated[str | None, typer.Option(help="Last bar to replay (ISO date).")] = None,
    speed: Annotated[
        float,
        typer.Option(help="Bar steps per second; 0 replays only on POST /admin/advance."),
    ] = 0.0,
    timeframe: Annotated[str, typer.Option(help="Bar timeframe in the store.")] = "1Day",
    state: Annotated[
        Path | None,
        typer.Option(help="SQLite file with the exchange's state (default: data dir)."),
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Forget the saved state and start over (--no-fresh: resume).")
    ] = False,
    require_keys: Annotated[
        bool,
        typer.Option(help="Accept only ALPACA_API_KEY / ALPACA_SECRET_KEY from the environment."),
    ] = False,
    news: Annotated[
        Path | None,
        typer.Option(help="JSON Lines news file to replay on /v1beta1/news."),
    ] = None,
    intrabar_prints: Annotated[
        bool,
        typer.Option(help="Replay each bar as four trade prints, orders matched at each."),
    ] = False,
) -> None:
    """Serve a local Alpaca-compatible paper exchange (trading API, trade_updates stream,
    market data) that replays the offline bar store; state survives restarts."""
    from core.settings import AlpacaCredentials, load_settings
    from pipelines.runtime import check_port_free
    from trading.adapters.paper_exchange.config import PaperExchangeConfig
    from trading.adapters.paper_exchange.news import read_news_file
    from trading.adapters.paper_exchange.server import load_store_bars, serve
    from trading.adapters.simulated.config import SimulatedExchangeConfig

    if speed < 0:
        raise ConfigError(
            f"--speed {speed:g}: give bar steps per second, 0 or more (0: only on "
            "POST /admin/advance)",
            where="paper-exchange",
        )
    settings = load_settings()
    state_path = state or settings.paths.data_dir / "paper_exchange.db"
    keys: dict[str, object] = {}
    if require_keys:
        credentials = AlpacaCredentials()
        if credentials.api_key is None or credentials.secret_key is None:
            raise ConfigError(
                "--require-keys needs ALPACA_API_KEY and ALPACA_SECRET_KEY in the environment",
                where="paper-exchange",
            )
        keys = {"api_key": credentials.api_key, "secret_key": credentials.secret_key}
    config = PaperExchangeConfig(
        host=host,
        port=port,
        exchange=SimulatedExchangeConfig.from_settings(
            settings.broker, allow_short=settings.risk.allow_short
        ),
        bars_per_second=speed,
        symbols=tuple(parse_symbols(symbols)) or None,
        start=_moment(start, "--start"),
        end=_moment(end, "--end"),
        timeframe=timeframe,
        state_path=state_path,
        intrabar_prints=intrabar_prints,
        **keys,
    )
    articles = read_news_file(news) if news is not None else None
    bars = load_store_bars(config, settings.paths.bars_dir)
    check_port_free(host, port, where="paper-exchange")
    if fresh:  # only once every input is known good: the state is the exchange's memory
        for suffix in ("", "-wal", "-shm"):
            Path(f"{state_path}{suffix}").unlink(missing_ok=True)
    console.print(
        f"replaying {len(bars):,} bars of {bars['symbol'].nunique()} symbols "
        f"({speed or 'manual'} steps/s); state in {state_path}",
        highlight=False,
    )
    serve(bars, config, bars_dir=settings.paths.bars_dir, news=articles)


def trade(
    broker: Annotated[
        str | None,
        typer.Option(
            help="alpaca (paper unless told otherwise) or paper-exchange "
            "(default: settings.broker.kind, paper-exchange unless it says alpaca)."
        ),
    ] = None,
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            metavar=SYMBOLS_METAVAR,
            help=f"Symbols, {SYMBOLS_HELP} (default: settings.symbols).",
        ),
    ] = None,
    exchange_url: Annotated[
        str | None,
        typer.Option(help="Paper exchange URL (default: settings.broker.paper_exchange_url)."),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help="momentum | mean_reversion | breakout (default: regime selector)."),
    ] = None,
    status_file: Annotated[
        Path | None,
        typer.Option(help="Status JSON, rewritten as it trades (default: data dir)."),
    ] = None,
    poll_seconds: Annotated[
        float, typer.Option(help="How often the broker's clock is read, in seconds.")
    ] = 1.0,
    timeframe: Annotated[
        str,
        typer.Option(help="Bar timeframe: 1Min, 5Min, 15Min or 1Day (intraday bars follow "
                     "the session rules of settings.intraday)."),
    ] = "1Day",
    watchlist: Annotated[
        Path | None,
        typer.Option(help="Trade the symbols of this watchlist (`tradewind screen`), re-read "
                     "whenever it changes; --symbols serve until it exists."),
    ] = None,
    feature_store: Annotated[
        bool, typer.Option(help="Also write closed trades to the feature store.")
    ] = True,
    model_endpoint: Annotated[
        str | None,
        typer.Option(help="Model service URL (default: settings.serving.endpoint; none: rules)."),
    ] = None,
    api_host: Annotated[
        str, typer.Option(help="The engine API's interface (beyond loopback needs a token).")
    ] = "127.0.0.1",
    api_port: Annotated[int, typer.Option(help="The engine API's port (0: a free one).")] = 8780,
    retrain_every: Annotated[
        int | None,
        typer.Option(help="Start the retrain deployment every N closed trades "
                     "(default: settings.models.retrain_every_trades)."),
    ] = None,
    prefect_api_url: Annotated[
        str | None,
        typer.Option(help="Prefect API for the retrain trigger (default: PREFECT_API_URL, "
                     "else the server of `tradewind ui`)."),
    ] = None,
    alerts: Annotated[
        Path | None,
        typer.Option(help="YAML with the alert sinks (monitoring.sinks.AlertConfig fields)."),
    ] = None,
) -> None:
    """Run the trading engine as a service against Alpaca or the local paper exchange,
    until SIGTERM/SIGINT; recovers from the broker and the journal at start-up. Serves
    its API and live dashboard (see docs/ENGINE.md)."""
    import asyncio

    from core.bars import check_timeframe
    from core.settings import AlpacaCredentials, load_settings
    from trading.control import kit as control
    from trading.service import ServiceConfig, install_signal_handlers, warmup_days_for

    settings = load_settings()
    names = tuple(parse_symbols(symbols)) or tuple(s.upper() for s in settings.symbols)
    if broker is None:
        broker = "alpaca" if settings.broker.kind == "alpaca" else "paper-exchange"
    if broker not in ("alpaca", "paper-exchange"):
        raise ConfigError(f"unknown --broker {broker!r}; use alpaca or paper-exchange")
    credentials = AlpacaCredentials()
    url: str | None = None
    if broker == "paper-exchange":
        url = (exchange_url or settings.broker.paper_exchange_url).rstrip("/")
        if not credentials.present:
            # The local exchange accepts any key pair unless started with --require-keys.
            credentials = AlpacaCredentials(
                ALPACA_API_KEY="paper-exchange", ALPACA_SECRET_KEY="paper-exchange"
            )
    config = ServiceConfig(
        symbols=names,
        timeframe=check_timeframe(timeframe),
        status_path=status_file or settings.paths.data_dir / "trade_status.json",
        poll_seconds=poll_seconds,
        warmup_days=warmup_days_for(timeframe),
        watchlist_path=watchlist,
        foreign_positions=settings.broker.foreign_positions,
    )
    # Before the journal opens or the account is read: one engine per journal and account.
    lock = _engine_lock(settings, url, credentials).acquire()
    endpoint = model_endpoint if model_endpoint is not None else settings.serving.endpoint
    try:
        kit = _control_kit(settings, api_host, api_port, retrain_every, alerts)
        service = build_trading_service(
            settings, credentials, url, strategy, config, feature_store, endpoint or None, kit
        )
    except BrokerError as exc:
        lock.release()
        if url is None:
            raise
        raise ConfigError(
            f"{exc.message}; start the exchange with `tradewind paper-exchange` (see "
            "`tradewind paper-exchange -h`) or point --exchange-url at it",
            where="trade",
        ) from None
    except BaseException:
        lock.release()  # a start that failed leaves the account free
        raise
    plane = kit.plane(
        service, prefect_api_url=_prefect_api(settings, prefect_api_url), decides=kit.decides()
    )
    service.observer = plane
    _say(
        f"trading {', '.join(names)} on {broker}{f' at {url}' if url else ''}; decided by "
        f"{plane.decides}; status in {config.status_path}"
    )

    async def main() -> None:
        stop = asyncio.Event()
        remove = install_signal_handlers(stop)
        companions = control.start(plane, lambda at: _say(f"engine API and dashboard on {at}"))
        try:
            await service.run(stop, companions)
        finally:
            remove()
            control.stop(plane)

    try:
        asyncio.run(main())
    finally:
        lock.release()
    _say(f"stopped; {service.engine.stats.closed_trades} trades closed this run")


def _engine_lock(
    settings: Settings, url: str | None, credentials: AlpacaCredentials
) -> EngineLock:
    """The journal's lock and the account's (the paper exchange's URL, else Alpaca paper
    or live, with the key)."""
    from trading.engine_lock import EngineLock, account_claim, journal_claim

    venue = url or ("alpaca-paper" if credentials.paper else "alpaca-live")
    key = credentials.api_key.get_secret_value() if credentials.api_key else None
    claims = [account_claim(venue, key)]
    journal = journal_claim(settings.paths.journal_url)
    if journal is not None:
        claims.insert(0, journal)
    return EngineLock(claims)


def _say(line: str) -> None:
    """One line of the terminal's story (unwrapped, at once: a pipe reads it too)."""
    print(line, flush=True)


def _control_kit(
    settings: Settings, host: str, port: int, every: int | None, alerts: Path | None
) -> ControlKit:
    """The engine API's config (token from the environment, else a local token file)
    and the engine's alert sinks (`<data_dir>/engine/alerts.jsonl`, plus `--alerts`)."""
    import os

    import yaml

    from monitoring.sinks import AlertConfig, dispatcher_for
    from trading.control.config import TOKEN_ENV, EngineApiConfig, is_loopback, local_token
    from trading.control.kit import ControlKit

    folder = settings.paths.data_dir / "engine"
    token = os.environ.get(TOKEN_ENV) or None
    api = EngineApiConfig(
        host=host,
        port=port,
        token=token or (local_token(folder / "api-token") if is_loopback(host) else None),
        retrain_every_trades=every or settings.models.retrain_every_trades,
        address_file=folder / "api.json",
    )
    values: dict[str, object] = {
        "jsonl_path": folder / "alerts.jsonl",
        "state_path": folder / "alert_state.json",
        "console": False,  # the terminal's story already tells every alert's event
    }
    if alerts is not None:
        values.update(yaml.safe_load(alerts.read_text(encoding="utf-8")) or {})
    email = values.get("email")
    if isinstance(email, dict) and os.environ.get("TRADEWIND_SMTP_PASSWORD"):
        email["password"] = os.environ["TRADEWIND_SMTP_PASSWORD"]
    config = AlertConfig.model_validate(values)
    return ControlKit(
        journal_url=settings.paths.journal_url,
        api=api,
        dispatcher=dispatcher_for(config),
        alert_history=config.jsonl_path,
        story=_say,
    )


def _prefect_api(settings: Settings, given: str | None) -> str | None:
    """--prefect-api-url, else PREFECT_API_URL, else the server `tradewind ui` runs."""
    import json
    import os

    from pipelines.deployments import server_record

    record = server_record(settings)
    if given or os.environ.get("PREFECT_API_URL") or not record.is_file():
        return given or os.environ.get("PREFECT_API_URL")
    return json.loads(record.read_text(encoding="utf-8")).get("api_url")


def build_trading_service(
    settings: Settings,
    credentials: AlpacaCredentials,
    url: str | None,
    strategy: str | None,
    config: ServiceConfig,
    feature_store: bool,
    endpoint: str | None = None,
    kit: ControlKit | None = None,
) -> TradingService:
    """The composition of the live engine: AlpacaBroker (+ its market data) → engine →
    service. `url` points both at the local paper exchange; None means Alpaca. With a
    `kit`, the control plane watches the journal, broker and model client, and keeps the
    daily-loss halt's baseline."""
    from core.clock import ReplayClock
    from features.sectors import sector_of
    from features.technical import timeframe_bars_per_year
    from trading.adapters.alpaca.execution import AlpacaBroker, AlpacaBrokerConfig
    from trading.adapters.registry import SourceContext
    from trading.adapters.registry import market_data as build_market_data
    from trading.engine import EngineConfig, TradingEngine
    from trading.feed import RollingFeed
    from trading.journal import Journal
    from trading.risk import RiskConfig, RiskManager
    from trading.rules_client import RulesModelClient
    from trading.selector import StrategySelector
    from trading.service import CrashingBroker, TradingService, crash_point
    from trading.sizing import PositionSizer, SizingConfig
    from trading.strategies import STRATEGIES, get_strategy

    # First, before the broker is asked anything: a model service of other bars stops
    # the start with one line.
    model_client = _model_client(settings, endpoint, config.timeframe)
    alpaca = AlpacaBroker(
        AlpacaBrokerConfig(url_override=url), credentials, allow_live=settings.broker.allow_live
    )
    point = crash_point()
    engine_broker: RecoveringBroker = CrashingBroker(alpaca, point) if point else alpaca
    if kit is not None:
        engine_broker = kit.observe_broker(engine_broker)
    clock = ReplayClock(alpaca.market_clock().timestamp)
    market_data = build_market_data(
        {"type": "alpaca", "data_url": url}, SourceContext(credentials=credentials, clock=clock)
    )
    strategies = [get_strategy(strategy)] if strategy else list(STRATEGIES.values())
    feed = RollingFeed(
        strategies,
        bars_per_year=timeframe_bars_per_year(config.timeframe),
        corrections=settings.intraday.stream_bar_corrections,
    )
    if kit is not None:
        model_client = kit.observe_model(model_client, fallback=settings.models.fallback)
    engine = TradingEngine(
        broker=engine_broker,
        model_client=model_client,
        feed=feed,
        journal=kit.journal if kit is not None else Journal(settings.paths.journal_url),
        clock=clock,
        risk=RiskManager(
            RiskConfig.from_settings(settings.risk), ledger=kit.ledger if kit else None
        ),
        sizer=PositionSizer(SizingConfig.from_risk(settings.risk)),
        selector=StrategySelector.for_strategy(strategy, set(STRATEGIES)),
        config=EngineConfig.from_settings(settings, timeframe=config.timeframe),
        fallback_client=RulesModelClient(settings.risk, source="fallback"),
        trade_sink=_feature_store_sink(settings) if feature_store else None,
        sector_of=sector_of,
    )
    return TradingService(
        engine=engine,
        broker=engine_broker,
        market_data=market_data,
        feed=feed,
        clock=clock,
        config=config,
        broker_name="paper-exchange" if url else "alpaca",
        bar_stream=_bar_stream(config.timeframe, url, credentials, market_data, settings),
        news_stream=_news_stream(url, credentials) if settings.intraday.stream_news else None,
    )


def _bar_stream(
    timeframe: str,
    url: str | None,
    credentials: AlpacaCredentials,
    history: MarketData,
    settings: Settings,
) -> BarStream | None:
    """1-minute bars come over the market-data stream (Alpaca's, or the paper exchange's
    at `url`), with trade prints and bar corrections when the intraday settings ask;
    other timeframes are polled from the bars API."""
    from trading.adapters.alpaca.stream import AlpacaBarStream, AlpacaStreamConfig, stream_url_for

    if timeframe != "1Min":
        return None
    config = AlpacaStreamConfig(
        stream_url=stream_url_for(url) if url else None,
        timeframe="1Min",
        trades=settings.intraday.stream_trades,
        updated_bars=settings.intraday.stream_bar_corrections,
    )
    return AlpacaBarStream(config, credentials, history)


def _news_stream(url: str | None, credentials: AlpacaCredentials) -> NewsStream:
    """Alpaca's news stream, or the paper exchange's at `url`, back-filled from the
    news REST API of the same place."""
    from trading.adapters.alpaca.news import AlpacaNews, AlpacaNewsConfig
    from trading.adapters.alpaca.news_stream import (
        AlpacaNewsStream,
        AlpacaNewsStreamConfig,
        news_stream_url_for,
    )

    config = AlpacaNewsStreamConfig(stream_url=news_stream_url_for(url) if url else None)
    # The headlines of the sentiment windows before the engine started: the news API.
    history = AlpacaNews(AlpacaNewsConfig(data_url=url), credentials)
    return AlpacaNewsStream(config, credentials, history)


def _feature_store_sink(settings: Settings) -> TradeSink:
    """Closed trades → the feature store's trade collection (idempotent on trade_id). A
    store failure is reported and never stops trading: the journal has the trade."""
    import logging

    from core.errors import TradewindError
    from features.store import FeatureStore
    from trading.closed_trades import trades_frame

    store = FeatureStore(settings.paths, settings.feature_store)
    log = logging.getLogger("tradewind.trade")

    def sink(record: ClosedTradeRecord) -> None:
        try:
            store.write_trades(trades_frame([record]))
        except (TradewindError, OSError, ValueError) as exc:
            log.warning("trade %s not written to the feature store: %s", record.trade.trade_id, exc)

    return sink


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    from core.utc import utc_datetime

    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not an ISO date or time") from None
    return utc_datetime(moment)


def _model_client(
    settings: Settings, endpoint: str | None, timeframe: str | None = None
) -> ModelClient:
    """The engine's model client: the HTTP service when an endpoint is given, else the
    rules client (fixed 2×/3× ATR exits, no win probability). A service that answers
    with models trained on other bars than `timeframe` is refused here, at start-up."""
    from trading.rules_client import RulesModelClient

    if not endpoint:
        return RulesModelClient(settings.risk)
    client = _http_client(settings, endpoint, timeframe)
    client.check_timeframe()
    return client


def _http_client(
    settings: Settings, endpoint: str, timeframe: str | None = None
) -> HttpModelClient:
    from serving.client import HttpModelClient

    token = settings.serving.api_token
    return HttpModelClient(
        endpoint,
        timeout=settings.serving.timeout_seconds,
        token=token.get_secret_value() if token else None,
        timeframe=timeframe,
    )
