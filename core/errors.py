"""One error hierarchy for Tradewind. Each error knows the HTTP status it maps to, so
the service turns domain errors into clear 4xx/5xx answers without catching
`Exception` at every endpoint, and the command line prints the message, not a traceback."""

from __future__ import annotations


class TradewindError(Exception):
    """Base of every error Tradewind raises on purpose."""

    http_status: int = 500

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(TradewindError):
    """Settings or configuration files are invalid."""

    http_status = 400


class DataValidationError(TradewindError):
    """Input data (bars, features, requests) is malformed; `where` names the place."""

    http_status = 422


class NotFoundError(TradewindError):
    """A symbol, model, order or file that was asked for does not exist."""

    http_status = 404


class AuthenticationError(TradewindError):
    """Missing or wrong credentials."""

    http_status = 401


class RiskRejected(TradewindError):
    """An order was refused by the risk manager before any I/O."""

    http_status = 409


class BrokerError(TradewindError):
    """The broker refused a request or could not be reached."""

    http_status = 502


class ModelUnavailableError(TradewindError):
    """The model service (or a registered model) cannot answer right now."""

    http_status = 503


class DataSourceError(TradewindError):
    """A market data source failed (network, rate limit exhausted, bad payload)."""

    http_status = 502


class TimeframeMismatch(TradewindError):
    """A decision was asked for bars of another timeframe than the models were trained
    on (a 1Min engine against daily models): refused, never answered on wrong models."""

    http_status = 409
