"""`tradewind` commands for the operations flows and their scheduling:

- `tradewind deploy` — serve deployments of every flow with their exchange-time schedules
  (see `pipelines/deployments.py`) until Ctrl-C;
- `tradewind ui` — the Prefect UI and the MLflow UI on localhost, on the stores the flows use;
- `tradewind monitor`, `tradewind evaluate-ab`, `tradewind evaluate`, `tradewind optimize` —
  run one flow now.

Every command runs its flows against the project's Prefect database under the data dir
(`pipelines.runtime.use_prefect_home`), so the runs show in `tradewind ui` afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from core.errors import ConfigError
from pipelines.commands.options import (
    SOURCES_HELP,
    SYMBOLS_HELP,
    SYMBOLS_METAVAR,
    check_choice,
    parse_day,
    parse_symbols,
)

console = Console()


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `tradewind` app."""

    @app.command()
    def deploy(
        flows: list[str] | None = typer.Option(
            None, "--flow", help="Only these flows (repeatable; default: all)."
        ),
        api_url: str | None = typer.Option(
            None, "--api-url",
            help="Prefect API to register with (default: PREFECT_API_URL, else the server "
            "`tradewind ui` started, else a local server started here).",
        ),
        horizon_days: int = typer.Option(
            370, "--holiday-horizon-days", min=1,
            help="How far ahead NYSE holidays are excluded.",
        ),
        source: str | None = typer.Option(
            None, "--source", help=f"The flows' bar source: {SOURCES_HELP} "
            "(default: settings data.source, sample)."
        ),
        path: Path | None = typer.Option(
            None, "--path", help="File or folder of a parquet/csv source (settings data.path)."
        ),
        symbols: list[str] | None = typer.Option(
            None, "--symbols", metavar=SYMBOLS_METAVAR,
            help=f"Symbols, {SYMBOLS_HELP} (default: settings symbols).",
        ),
        timeframe: str | None = typer.Option(
            None, "--timeframe", help="Bar timeframe (default: settings data.timeframe, 1Day)."
        ),
    ) -> None:
        """Serve deployments of every flow on cron schedules in America/New_York (no runs on
        NYSE holidays), runnable from the Prefect UI, each with the user's data as its
        parameters (source, path, symbols, timeframe). Stops on Ctrl-C."""
        from core.bars import check_timeframe
        from core.settings import load_settings
        from pipelines.deployments import SCHEDULES, recorded_server
        from pipelines.runtime import sigterm_as_ctrl_c

        for name in flows or []:
            check_choice(name, [spec.flow for spec in SCHEDULES], "--flow")
        if timeframe is not None:
            check_timeframe(timeframe)
        data: dict[str, Any] = {
            key: value
            for key, value in {"source": source, "path": path, "timeframe": timeframe}.items()
            if value is not None
        }
        chosen = parse_symbols(symbols)
        overrides: dict[str, Any] = {"data": data} if data else {}
        if chosen:
            overrides["symbols"] = chosen
        settings = load_settings(**overrides)
        url = api_url or os.environ.get("PREFECT_API_URL") or recorded_server(settings)
        server: subprocess.Popen[bytes] | None = None
        if url is None:
            server, url = _start_prefect_server(settings, port=0)
            console.print(f"started a Prefect server for the deployments: [bold]{url}[/]")
        try:
            with sigterm_as_ctrl_c():
                _serve(url, flows or None, horizon_days, settings)
        finally:
            if server is not None:
                _stop(server)

    @app.command()
    def ui(
        prefect_port: int = typer.Option(0, "--prefect-port", help="0: a free port."),
        mlflow_port: int = typer.Option(0, "--mlflow-port", help="0: a free port."),
    ) -> None:
        """Start the Prefect UI and the MLflow UI on localhost (ports printed), on the same
        stores the flows write; Ctrl-C or SIGTERM stops both."""
        from core.settings import load_settings
        from pipelines.deployments import server_record
        from pipelines.runtime import free_port, sigterm_as_ctrl_c

        settings = load_settings()
        processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        record = server_record(settings)
        with sigterm_as_ctrl_c():  # a service manager's stop cleans up too
            try:
                prefect, prefect_url = _start_prefect_server(settings, port=prefect_port)
                processes.append(("Prefect", prefect))
                record.parent.mkdir(parents=True, exist_ok=True)
                record.write_text(json.dumps({"api_url": prefect_url, "pid": prefect.pid}),
                                  encoding="utf-8")
                mlflow_port = mlflow_port or free_port()
                mlflow = _start_mlflow_ui(settings, mlflow_port)
                processes.append(("MLflow", mlflow))
                mlflow_url = f"http://127.0.0.1:{mlflow_port}"
                _wait_http(f"{mlflow_url}/health", mlflow, "MLflow UI", timeout=120)
                table = Table(title="Tradewind UIs (Ctrl-C stops Prefect and MLflow)")
                table.add_column("UI")
                table.add_column("URL")
                table.add_column("store")
                table.add_row("Prefect", prefect_url.removesuffix("/api"),
                              str(_prefect_home(settings) / "prefect.db"))
                table.add_row("MLflow", mlflow_url, settings.paths.mlflow_tracking_uri)
                engine = _engine_url(settings.paths.data_dir)
                table.add_row("Engine", engine, settings.paths.journal_url)
                console.print(table)
                while all(process.poll() is None for _, process in processes):
                    time.sleep(0.5)
                for name, process in processes:
                    if process.poll() is not None:
                        console.print(f"[red]{name} stopped (exit {process.returncode})[/]")
            except KeyboardInterrupt:
                console.print("stopping the UIs…")
            finally:
                for _, process in processes:
                    _stop(process)
                with contextlib.suppress(FileNotFoundError):
                    record.unlink()

    def _engine_url(data_dir: Path) -> str:
        """The engine's dashboard when `tradewind trade` runs (it serves it itself)."""
        from trading.control.config import DEFAULT_PORT, engine_address

        found = engine_address(data_dir / "engine" / "api.json")
        return found or f"not running (`tradewind trade` serves 127.0.0.1:{DEFAULT_PORT})"

    @app.command()
    def monitor(
        window_days: int = typer.Option(30, "--window-days", help="Current window length."),
        as_of: str | None = typer.Option(None, "--as-of", help="End of the window (ISO)."),
        webhook: str | None = typer.Option(None, "--webhook", help="Alert webhook URL."),
    ) -> None:
        """Feature and prediction drift, calibration and latency, with alerts."""
        parse_day(as_of, "--as-of")
        if window_days < 1:
            raise ConfigError(f"--window-days {window_days}: give at least 1", where="monitor")
        from pipelines.flows.monitor import monitor_flow

        report = _run(monitor_flow, window_days=window_days, as_of=as_of, alert_webhook=webhook)
        table = Table(title="Feature drift (largest PSI first)")
        for column in ("feature", "psi", "ks_statistic", "ks_pvalue", "status"):
            table.add_column(column)
        for row in report["drift"][:15]:
            table.add_row(row["feature"], _fmt(row["psi"]), _fmt(row["ks_statistic"]),
                          _fmt(row["ks_pvalue"]), row["status"])
        console.print(table)
        for label, result in report["prediction_drift"].items():
            console.print(f"prediction drift ({label}): PSI {_fmt(result['psi'])}, "
                          f"{result['status']}")
        calibration = report["calibration"]
        console.print(f"calibration: ECE {_fmt(calibration['ece'])} on "
                      f"{calibration['trades']} closed trades")
        latency = report["latency"]
        console.print(f"latency: p50 {_fmt(latency['p50_ms'])} ms, p99 "
                      f"{_fmt(latency['p99_ms'])} ms over {_fmt(latency['requests'])} decisions")
        console.print(f"alerts: {report['alerts']['sent']} sent, "
                      f"{report['alerts']['suppressed']} suppressed · report "
                      f"{report['report_path']}")

    @app.command("evaluate-ab")
    def evaluate_ab(
        alpha: float = typer.Option(0.05, "--alpha", help="Family-wise significance level."),
        min_trades: int | None = typer.Option(
            None, "--min-trades", help="Closed trades per arm (default: settings)."
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run/--no-dry-run", help="Decide, but move no alias."
        ),
        as_of: str | None = typer.Option(None, "--as-of", help="Only trades closed by then."),
    ) -> None:
        """Compare champion and challenger on live trades: promote, retire or roll back."""
        parse_day(as_of, "--as-of")
        if not 0 < alpha < 1:
            raise ConfigError(f"--alpha {alpha}: give a level between 0 and 1, e.g. 0.05",
                              where="evaluate-ab")
        from pipelines.flows.evaluate_ab import evaluate_ab_flow

        summary = _run(evaluate_ab_flow, alpha=alpha, min_trades_per_arm=min_trades,
                       dry_run=dry_run, as_of=as_of)
        if summary["arms"]:
            table = Table(title="A/B arms")
            for column in ("arm", "trades", "win rate", "profit factor", "mean return",
                           "log loss"):
                table.add_column(column)
            for arm, figures in summary["arms"].items():
                table.add_row(arm, str(figures["trades"]), _fmt(figures["win_rate"]),
                              _fmt(figures["profit_factor"]), _fmt(figures["mean_return"]),
                              _fmt(figures["log_loss"]))
            console.print(table)
            for test in summary["tests"]:
                console.print(f"{test['name']}: statistic {_fmt(test['statistic'])}, "
                              f"p = {_fmt(test['pvalue'])}, favours {test['favours'] or '—'}")
        console.print(f"[bold]{summary['action']}[/] (applied: {summary['applied']}): "
                      f"{summary['reason']}")

    @app.command()
    def evaluate(
        source: str = typer.Option("sp500", help="sp500 | sample | a bar file or folder "
                                   "(with --timeframe 1Min|5Min|15Min: a minute-bar file)."),
        folds: str | None = typer.Option(
            None, help="Daily: test years (default 2015,2016,2017; later months join the "
            "last fold). Intraday: the folds' first sessions as dates (default: the last "
            "three blocks of --fold-days sessions)."),
        timeframe: str = typer.Option(
            "1Day", "--timeframe",
            help="Bars to evaluate on: 1Day (folds are years, held-out symbols trade), or "
            "1Min|5Min|15Min from a minute --source (folds are blocks of sessions on the "
            "same symbols: out of time only, no held-out symbols)."),
        fold_days: int | None = typer.Option(
            None, "--fold-days", min=1,
            help="Intraday: sessions per fold (default 5, a week)."),
        symbols: list[str] | None = typer.Option(
            None, "--symbols", "--symbol", metavar=SYMBOLS_METAVAR,
            help=f"Only these stocks ({SYMBOLS_HELP}): held-out ones trade, others train "
            "(intraday: development symbols only; they train and trade)."),
        max_training_symbols: int | None = typer.Option(
            None, help="Train on N development symbols spread over the alphabet."),
        json_out: Path | None = typer.Option(
            None, "--json", help="JSON path; the page goes next to it (reports/evaluation/)."),
        workers: int = typer.Option(2, min=1, max=2, help="Folds trained at once."),
    ) -> None:
        """Walk-forward evaluation of the decision policy: per test year, train the models on
        the development symbols up to the year, then replay the held-out symbols through the
        same engine ungated and with the policy; JSON, HTML page and MLflow run. With
        --timeframe 1Min the folds are blocks of sessions of a minute file, out of time on
        the same symbols."""
        from core.bars import DAILY, check_timeframe
        from monitoring.evaluation import FOLD_SESSIONS
        from monitoring.evaluation_page import summary_lines
        from pipelines.flows.evaluate import evaluate_flow

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        check_timeframe(timeframe)
        given = [part.strip() for part in (folds or "").split(",") if part.strip()]
        arguments: dict[str, Any] = {"timeframe": timeframe}
        if timeframe == DAILY:
            if fold_days is not None:
                raise ConfigError("--fold-days is for intraday timeframes; daily folds are "
                                  "calendar years (--folds 2015,2016)", where="evaluate")
            try:
                years = [int(year) for year in given or ["2015", "2016", "2017"]]
            except ValueError:
                raise ConfigError(f"--folds takes years like 2015,2016; got {folds}",
                                  where="evaluate") from None
            arguments["years"] = years
        else:
            if max_training_symbols is not None:
                raise ConfigError("--max-training-symbols is for daily bars; intraday folds "
                                  "train on the --symbols they trade", where="evaluate")
            for day in given:
                if len(day) != 10:
                    raise ConfigError(f"--folds with --timeframe {timeframe} takes the folds' "
                                      f"first sessions as dates like 2021-08-02; got {day}",
                                      where="evaluate")
                parse_day(day, "--folds")
            arguments |= {"fold_sessions": fold_days or FOLD_SESSIONS,
                          "fold_starts": given or None}
        payload = _run(evaluate_flow, source=source, symbols=parse_symbols(symbols) or None,
                       max_training_symbols=max_training_symbols,
                       json_path=str(json_out) if json_out else None, workers=workers,
                       **arguments)
        data = payload["data"]
        if timeframe == DAILY:
            console.print(f"[bold]Policy vs ungated engine on {data['held_out_symbols']}"
                          " held-out symbols[/]")
        else:
            console.print(f"[bold]Policy vs ungated engine on {timeframe} bars of "
                          f"{data['symbols']} symbol(s), {data['sessions']} sessions "
                          f"{data['start']}..{data['end']}: OUT OF TIME ONLY, NOT held-out "
                          "symbols[/]")
        for line in summary_lines(payload["evaluation"]):
            console.print(f"  {line}", highlight=False)
        run = payload["run"]
        console.print(f"{run['json']} · {run['html']} · MLflow run {run['mlflow_run_id']} "
                      f"(experiment 'evaluation') · {run['seconds']:.0f} s")

    @app.command()
    def optimize(
        trials: int = typer.Option(30, "--trials", help="Optuna trials."),
        strategy: str = typer.Option("momentum", "--strategy",
                                     help="momentum, mean_reversion or breakout."),
        seed: int | None = typer.Option(None, "--seed", help="Sampler seed (default: settings)."),
        out_of_time_fraction: float = typer.Option(
            0.25, "--out-of-time-fraction",
            help="Share of the history held out when the champion's window is not used.",
        ),
        champion_window: bool = typer.Option(
            True, "--champion-window/--no-champion-window",
            help="Search on the champion's training window (default when there is one).",
        ),
    ) -> None:
        """Search strategy parameters on the training window, evaluate once out of time,
        and write a proposal file (nothing is applied)."""
        from core.performance import HEADLINE_FIGURES
        from trading.strategies import STRATEGIES

        check_choice(strategy, sorted(STRATEGIES), "--strategy")
        if trials < 1:
            raise ConfigError(f"--trials {trials}: give at least 1", where="optimize")
        if not 0 < out_of_time_fraction < 1:
            raise ConfigError(
                f"--out-of-time-fraction {out_of_time_fraction}: give a share between 0 and 1",
                where="optimize",
            )
        from pipelines.flows.optimize import optimize_flow

        proposal = _run(optimize_flow, strategy=strategy, trials=trials, seed=seed,
                        out_of_time_fraction=out_of_time_fraction,
                        use_champion_window=champion_window)
        windows = proposal["windows"]
        console.print(f"in sample {windows['in_sample'][0][:10]} → {windows['in_sample'][1][:10]}, "
                      f"out of time → {windows['out_of_time'][1][:10]} ({windows['source']})")
        table = Table(title=f"{strategy}: default vs proposed")
        for column in ("metric", "default IS", "proposed IS", "default OOT", "proposed OOT"):
            table.add_column(column)
        for key in HEADLINE_FIGURES:
            table.add_row(key, _fmt(proposal["baseline"]["in_sample"].get(key)),
                          _fmt(proposal["in_sample"].get(key)),
                          _fmt(proposal["baseline"]["out_of_time"].get(key)),
                          _fmt(proposal["out_of_time"].get(key)))
        console.print(table)
        console.print("proposed parameters: " + ", ".join(
            f"{k}={_fmt(v)}" for k, v in proposal["params"].items()))
        console.print(f"proposal written to [bold]{proposal['path']}[/] (not applied)")


# -- helpers ------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _prefect_home(settings: Any) -> Path:
    from pipelines.runtime import prefect_home

    return prefect_home(settings.paths.data_dir)


def _run(flow: Any, **parameters: Any) -> dict[str, Any]:
    """Run a flow now, recorded in the project's Prefect database."""
    from core.settings import load_settings
    from pipelines.runtime import use_prefect_home

    settings = load_settings()
    with use_prefect_home(settings.paths.data_dir, console_level="WARNING",
                          database_url=settings.paths.prefect_database_url):
        result = flow(**parameters)
    if not isinstance(result, dict):
        raise ConfigError(f"flow {flow.name} returned no result", where="tradewind")
    return result


def _start_prefect_server(settings: Any, *, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """`prefect server start` on 127.0.0.1 with its database under the data dir."""
    from pipelines.runtime import free_port, prefect_environment

    port = port or free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(prefect_environment(settings.paths.data_dir, settings.paths.prefect_database_url))
    env.pop("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", None)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{port}/api"
    _prefect_home(settings).mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    _wait_http(f"{url}/health", process, "Prefect server", timeout=120)
    return process, url


def _start_mlflow_ui(settings: Any, port: int) -> subprocess.Popen[bytes]:
    from models.tracker import prepare_store, ui_command

    prepare_store(settings.paths.mlflow_tracking_uri)
    artifacts = Path(settings.paths.mlflow_artifact_root)
    artifacts.resolve().mkdir(parents=True, exist_ok=True)
    command = ui_command(settings.paths.mlflow_tracking_uri, artifacts, host="127.0.0.1", port=port)
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def _wait_http(url: str, process: subprocess.Popen[bytes], what: str, *, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                stderr = process.stderr
                error = stderr.read().decode(errors="replace")[-800:] if stderr else ""
                raise ConfigError(f"{what} exited with {process.returncode}: {error}", where="ui")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while it starts: not left behind
        _stop(process)
        raise
    _stop(process)
    raise ConfigError(f"{what} did not answer on {url} within {timeout:.0f} s", where="ui")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a child started in its own session (it and its workers), politely first."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _serve(api_url: str, flows: list[str] | None, horizon_days: int, settings: Any) -> None:
    """Register the deployments with `api_url` and execute their runs until Ctrl-C."""
    from prefect import serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipelines.deployments import SCHEDULES, TIMEZONE, build_deployments

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        deployments, missing = build_deployments(
            horizon_days=horizon_days, only=flows, settings=settings
        )
        if not deployments:
            raise ConfigError(f"no flow to deploy (missing: {', '.join(missing)})",
                              where="deploy")
        table = Table(title=f"Deployments on {api_url.removesuffix('/api')} ({TIMEZONE})")
        for column in ("flow", "deployment", "cron", "parameters"):
            table.add_column(column)
        deployed = {d.flow_name: d for d in deployments}
        for spec in SCHEDULES:
            if spec.flow in deployed:
                parameters = deployed[spec.flow].parameters or {}
                table.add_row(spec.flow, spec.deployment, spec.cron or "on demand",
                              ", ".join(f"{k}={v}" for k, v in parameters.items()))
        console.print(table)
        if missing:
            console.print(f"[yellow]not deployed (flow not found): {', '.join(missing)}[/]")
        console.print("NYSE holidays are excluded from every schedule; Ctrl-C stops serving.")
        serve(*deployments, print_starting_message=False)
