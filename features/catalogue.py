"""The feature catalogue: every feature Tradewind computes, with its group, meaning,
lookback (in bars) and unit. It is the contract between the feature code, the Feast
repository, the models (which train on `MODEL_FEATURES`) and the engine.

Groups: `technical` (per symbol, from its own bars), `market` (index, volatility, breadth,
sector, beta/correlation), `sentiment` (news and earnings; explicit NaN with a flag when
no source is configured), `temporal` (exchange calendar, exchange time) and `position`
(the engine's portfolio at decision time)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import NotFoundError

GROUPS: tuple[str, ...] = ("technical", "market", "sentiment", "temporal", "position")


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    group: str
    description: str
    lookback: int  # bars of history the value depends on (0: the current bar/state only)
    unit: str

    def as_dict(self) -> dict[str, str | int]:
        return {
            "name": self.name,
            "group": self.group,
            "description": self.description,
            "lookback": self.lookback,
            "unit": self.unit,
        }


def _t(name: str, description: str, lookback: int, unit: str) -> FeatureSpec:
    return FeatureSpec(name, "technical", description, lookback, unit)


def _m(name: str, description: str, lookback: int, unit: str) -> FeatureSpec:
    return FeatureSpec(name, "market", description, lookback, unit)


def _s(name: str, description: str, lookback: int, unit: str) -> FeatureSpec:
    return FeatureSpec(name, "sentiment", description, lookback, unit)


def _c(name: str, description: str, unit: str) -> FeatureSpec:
    return FeatureSpec(name, "temporal", description, 0, unit)


def _p(name: str, description: str, unit: str) -> FeatureSpec:
    return FeatureSpec(name, "position", description, 0, unit)


TECHNICAL: tuple[FeatureSpec, ...] = (
    _t("ema_9_dist", "close / EMA(9) of close - 1", 9, "fraction"),
    _t("ema_21_dist", "close / EMA(21) of close - 1", 21, "fraction"),
    _t("ema_50_dist", "close / EMA(50) of close - 1", 50, "fraction"),
    _t("ema_200_dist", "close / EMA(200) of close - 1", 200, "fraction"),
    _t("ema_9_21_spread", "EMA(9) / EMA(21) - 1 (momentum crossover state)", 21, "fraction"),
    _t("rsi_14", "Wilder RSI over 14 bars", 14, "index 0-100"),
    _t("atr_14", "Wilder average true range over 14 bars", 14, "price"),
    _t("atr_14_pct", "ATR(14) / close", 14, "fraction"),
    _t("macd_line", "MACD(12, 26) line / close", 26, "fraction"),
    _t("macd_signal", "MACD signal line (EMA 9 of the line) / close", 34, "fraction"),
    _t("macd_hist", "MACD histogram (line - signal) / close", 34, "fraction"),
    _t("bb_pct_b_20", "Bollinger %b: (close - lower) / (upper - lower), 20 bars, 2 sd", 20,
       "ratio"),
    _t("bb_width_20", "Bollinger width: (upper - lower) / middle, 20 bars, 2 sd", 20, "fraction"),
    _t("volume_ratio_20", "volume / mean volume of the last 20 bars (this one included)", 20,
       "ratio"),
    _t("roc_10", "rate of change over 10 bars", 10, "percent"),
    _t("stoch_k_14", "fast stochastic %K over 14 bars", 14, "index 0-100"),
    _t("stoch_d_3", "stochastic %D: 3-bar mean of %K(14)", 16, "index 0-100"),
    _t("adx_14", "Wilder ADX over 14 bars", 28, "index 0-100"),
    _t("plus_di_14", "Wilder +DI over 14 bars", 14, "index 0-100"),
    _t("minus_di_14", "Wilder -DI over 14 bars", 14, "index 0-100"),
    _t("cci_20", "commodity channel index over 20 bars", 20, "index"),
    _t("willr_14", "Williams %R over 14 bars", 14, "index -100-0"),
    _t("mfi_14", "money flow index over 14 bars", 14, "index 0-100"),
    _t("obv_slope_20", "20-bar linear-regression slope of OBV / mean volume of 20 bars", 20,
       "ratio per bar"),
    _t("vwap_dist_20", "close / 20-bar volume-weighted typical price - 1", 20, "fraction"),
    _t("return_1", "close / previous close - 1", 1, "fraction"),
    _t("return_5", "close / close 5 bars ago - 1", 5, "fraction"),
    _t("return_20", "close / close 20 bars ago - 1", 20, "fraction"),
    _t("realized_vol_20", "std of 20 one-bar log returns, annualized", 21, "fraction per year"),
    _t("high_20_dist", "close / max(high of the 20 bars before this one) - 1", 21, "fraction"),
    _t("low_20_dist", "close / min(low of the 20 bars before this one) - 1", 21, "fraction"),
    _t("gap_1", "open / previous close - 1", 1, "fraction"),
    _t("range_pct_1", "(high - low) / close of this bar", 0, "fraction"),
)

MARKET: tuple[FeatureSpec, ...] = (
    _m("mkt_return_1", "index close / previous close - 1", 1, "fraction"),
    _m("mkt_return_5", "index return over 5 bars", 5, "fraction"),
    _m("mkt_return_20", "index return over 20 bars", 20, "fraction"),
    _m("mkt_ema_50_dist", "index close / EMA(50) - 1", 50, "fraction"),
    _m("mkt_ema_200_dist", "index close / EMA(200) - 1", 200, "fraction"),
    _m("mkt_trend", "index EMA(50) / EMA(200) - 1 (positive: uptrend)", 200, "fraction"),
    _m("mkt_rsi_14", "index RSI(14)", 14, "index 0-100"),
    _m("mkt_realized_vol_20", "index realized volatility over 20 bars, annualized", 21,
       "fraction per year"),
    _m("mkt_vol_level", "VIX close / 100 when VIX is in the data, else the index realized "
       "volatility (see mkt_vol_is_vix)", 21, "fraction per year"),
    _m("mkt_vol_trend", "mkt_vol_level / its 20-bar mean - 1", 41, "fraction"),
    _m("mkt_vol_is_vix", "1 when mkt_vol_level is the VIX, 0 when it is the realized-vol proxy",
       0, "flag"),
    _m("mkt_realized_vol_5", "index realized volatility over 5 bars, annualized", 6,
       "fraction per year"),
    _m("mkt_realized_vol_60", "index realized volatility over 60 bars, annualized", 61,
       "fraction per year"),
    _m("mkt_log_vol_20", "log of mkt_realized_vol_20", 21, "log"),
    _m("mkt_vol_ratio_5_60", "log(index realized vol 5 / realized vol 60)", 61, "log ratio"),
    _m("mkt_vol_ratio_20_60", "log(index realized vol 20 / realized vol 60)", 61, "log ratio"),
    _m("mkt_return_60", "index return over 60 bars", 60, "fraction"),
    _m("mkt_trend_strength_20", "index log return over 20 bars / (daily realized vol 20 x "
       "sqrt(20)): the move in units of its noise", 21, "ratio"),
    _m("mkt_abs_trend_strength_20", "|mkt_trend_strength_20|", 21, "ratio"),
    _m("mkt_trend_strength_60", "index log return over 60 bars / (daily realized vol 60 x "
       "sqrt(60))", 61, "ratio"),
    _m("mkt_parkinson_vol_20", "index Parkinson (high-low range) volatility over 20 bars, "
       "annualized", 20, "fraction per year"),
    _m("mkt_drawdown_252", "index close / its highest close of the last 252 bars - 1", 252,
       "fraction"),
    _m("mkt_advance_decline", "(advancers - decliners) / symbols with a return, across the "
       "universe at this bar", 1, "ratio -1-1"),
    _m("mkt_pct_above_ema_50", "share of the universe closing above its EMA(50)", 50, "fraction"),
    _m("mkt_pct_new_high_20", "share of the universe closing above its prior 20-bar high", 21,
       "fraction"),
    _m("mkt_relative_strength_20", "return_20 - mkt_return_20", 20, "fraction"),
    _m("sector_id", "GICS sector code (features.sectors.SECTORS order; -1 unknown)", 0, "code"),
    _m("sector_momentum_20", "mean return_20 of the symbol's sector at this bar (NaN when the "
       "sector is unknown)", 20, "fraction"),
    _m("sector_relative_20", "return_20 - sector_momentum_20", 20, "fraction"),
    _m("beta_60", "beta of the symbol's returns to the index over 60 bars", 61, "ratio"),
    _m("corr_60", "correlation of the symbol's one-bar returns with the index, 60 bars", 61,
       "ratio -1-1"),
)

SENTIMENT: tuple[FeatureSpec, ...] = (
    _s("news_count_1d", "headlines about the symbol in the 24 h before the decision time", 0,
       "count"),
    _s("news_count_5d", "headlines about the symbol in the 5 days before the decision time", 0,
       "count"),
    _s("sent_mean_1d", "mean VADER compound score of the 24 h headlines (NaN without news)", 0,
       "score -1-1"),
    _s("sent_mean_5d", "mean VADER compound score of the 5-day headlines", 0, "score -1-1"),
    _s("sent_available", "1 when a news source was configured for this computation, else 0", 0,
       "flag"),
    _s("earnings_days_to", "calendar days to the next scheduled earnings date", 0, "days"),
    _s("earnings_days_since", "calendar days since the last earnings date", 0, "days"),
    _s("earnings_available", "1 when an earnings calendar was configured, else 0", 0, "flag"),
)

TEMPORAL: tuple[FeatureSpec, ...] = (
    _c("tod_bucket", "time-of-day bucket in exchange time: 0 pre-market, 1 first 30 min, "
       "2 morning, 3 midday, 4 afternoon, 5 last 30 min, 6 post-market, -1 closed", "code"),
    _c("dow", "day of week of the session, 0 Monday .. 4 Friday", "code"),
    _c("session_code", "session of the bar: 0 pre, 1 regular, 2 post, -1 closed", "code"),
    _c("session_is_regular", "1 inside the regular session", "flag"),
    _c("minutes_since_open", "minutes from the regular open to the bar (daily bars: to the "
       "close)", "minutes"),
    _c("minutes_to_close", "minutes from the bar to the regular close (daily bars: 0)", "minutes"),
    _c("days_to_month_end", "trading sessions left in the month after this one", "sessions"),
    _c("days_since_month_start", "trading sessions of the month before this one", "sessions"),
)

POSITION: tuple[FeatureSpec, ...] = (
    _p("pos_open_positions", "number of open positions", "count"),
    _p("pos_exposure_pct", "gross market value of open positions / equity", "fraction"),
    _p("pos_sector_exposure_pct", "market value in the candidate symbol's sector / equity",
       "fraction"),
    _p("pos_correlated_positions", "open positions whose return correlation with the "
       "candidate exceeds the threshold", "count"),
    _p("pos_buying_power_pct", "buying power / equity", "fraction"),
    _p("pos_cash_pct", "cash / equity", "fraction"),
    _p("pos_symbol_held", "1 when the candidate symbol already has an open position", "flag"),
)

CATALOGUE: tuple[FeatureSpec, ...] = TECHNICAL + MARKET + SENTIMENT + TEMPORAL + POSITION

_BY_NAME = {spec.name: spec for spec in CATALOGUE}

# The bar-derived columns compute_features() returns (position comes at decision time).
BAR_FEATURES: tuple[str, ...] = tuple(
    spec.name for spec in CATALOGUE if spec.group != "position"
)

# What the models train on: every group, position included, in catalogue order.
MODEL_FEATURES: tuple[str, ...] = tuple(spec.name for spec in CATALOGUE)

# The longest lookback of any bar feature: the minimum history for a complete row.
MAX_LOOKBACK: int = max(spec.lookback for spec in CATALOGUE)


def feature_names(group: str | None = None) -> list[str]:
    """Names in catalogue order, optionally of one group."""
    if group is None:
        return [spec.name for spec in CATALOGUE]
    if group not in GROUPS:
        raise NotFoundError(
            f"unknown feature group '{group}'; groups are {', '.join(GROUPS)}",
            where="features.catalogue",
        )
    return [spec.name for spec in CATALOGUE if spec.group == group]


def spec(name: str) -> FeatureSpec:
    """The spec of one feature, or NotFoundError."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise NotFoundError(f"no feature named '{name}'", where="features.catalogue") from None
