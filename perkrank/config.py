"""Settings read from configs/*.yaml into pydantic models; `PERKRANK_…` environment variables win.

Nested keys use `__` in variable names: `PERKRANK_TRAIN_ALS__FACTORS=128` sets `als.factors`
in configs/train.yaml, `PERKRANK_REDIS_URL` sets `redis_url` in configs/serve.yaml.
"""

from __future__ import annotations

import os
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from perkrank.caps_config import CAP_COUNTS as CAP_COUNTS
from perkrank.caps_config import CAP_SCOPES as CAP_SCOPES
from perkrank.caps_config import MAX_WINDOW_SECONDS as MAX_WINDOW_SECONDS
from perkrank.caps_config import WINDOW_NAMES as WINDOW_NAMES
from perkrank.caps_config import WINDOW_SCHEMA as WINDOW_SCHEMA
from perkrank.caps_config import CapRule as CapRule
from perkrank.caps_config import CapsConfig as CapsConfig
from perkrank.caps_config import LocalFloor as LocalFloor
from perkrank.config_base import MAX_COUNT, Section
from perkrank.mechanics_config import ProgramMechanics
from perkrank.privacy_config import ServingPrivacy, TrainingPrivacy

CONFIG_DIR = Path(str(files("perkrank.configs")))
"""The default configs, shipped as package data (`configs/` in the source tree)."""


class ConfigError(ValueError):
    """A config file or environment variable holds a value perkrank cannot use."""


class PerkrankSettings(BaseSettings):
    """Base for top-level configs: YAML values, overridden by environment variables."""

    model_config = SettingsConfigDict(extra="forbid", env_nested_delimiter="__", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)


# ---------------------------------------------------------------- training


class SplitConfig(Section):
    """Time split: validation window, then test window, both before the data's end."""

    test_start: date | None = None
    """First day of the test window; default: the 1st of the month where the last `test_days`
    of purchases begin, and the window then runs to the last purchase."""
    test_days: int = Field(30, gt=0, le=3660)
    validation_days: int = Field(30, gt=0, le=3660)


class InteractionConfig(Section):
    """How purchases become the member × item confidence matrix."""

    weighting: Literal["count", "amount", "bm25", "tfidf"] = "bm25"
    """count: recency-weighted purchase counts; amount: log1p of recency-weighted spend;
    bm25/tfidf: implicit's weighting of the counts, on the items × members matrix."""
    half_life_days: float | None = Field(120.0, gt=0, le=36600)
    """A purchase's weight halves every this many days before the cutoff; None: no decay."""
    bm25_k1: float = Field(100.0, gt=0, le=1e6)
    bm25_b: float = Field(0.8, ge=0, le=1)


class AlsConfig(Section):
    factors: int = Field(64, gt=0, le=4096)
    regularization: float = Field(0.05, ge=0, le=1e6)
    alpha: float = Field(1.0, gt=0, le=1e6)
    iterations: int = Field(15, gt=0, le=10_000)
    use_gpu: Literal["auto"] | bool = "auto"
    """Fit on implicit's GPU ALS: auto = when implicit finds a CUDA device
    (`implicit.gpu.HAS_CUDA`), true = always (an error without one), false = never."""


class BprConfig(Section):
    factors: int = Field(64, gt=0, le=4096)
    learning_rate: float = Field(0.05, gt=0, le=100)
    regularization: float = Field(0.01, ge=0, le=1e6)
    iterations: int = Field(50, gt=0, le=10_000)


class LightFMConfig(Section):
    no_components: int = Field(32, gt=0, le=4096)
    loss: Literal["warp", "bpr", "logistic", "warp-kos"] = "warp"
    learning_rate: float = Field(0.05, gt=0, le=100)
    item_alpha: float = Field(0.0, ge=0, le=1e6)
    user_alpha: float = Field(0.0, ge=0, le=1e6)
    epochs: int = Field(8, gt=0, le=10_000)


class BlendConfig(Section):
    """Blend weights per component; `fit_weights` searches them on the validation window."""

    weights: dict[str, Annotated[float, Field(ge=-1e6, le=1e6)]] = Field(
        default_factory=lambda: {
            "als": 1.0,
            "lightfm": 1.0,
            "regional_popularity": 0.5,
            "repeat": 1.0,
        }
    )
    fit_weights: bool = True
    search_members: int | None = Field(5000, gt=0, le=MAX_COUNT)
    """Validation members (seeded sample) the weight search scores on; None: all."""


class RankerConfig(Section):
    """The learned second stage (`training.ranker_step`): its training snapshots and trees."""

    snapshots: int = Field(1, ge=1, le=12)
    """Label windows stacked to fit it: the validation window, then windows starting
    `snapshot_step_days` earlier each (same length, features before each start)."""
    snapshot_step_days: int = Field(30, gt=0, le=366)
    tree_weight: float = Field(0.0, ge=0, le=100)
    """0: the linear ranker alone; else a LightGBM lambdarank ensemble member, its score
    scaled to the linear logit's spread on the training rows, then times this weight."""
    tree_rounds: int = Field(75, gt=0, le=5000)


class CouponConfig(Section):
    """The campaign coupon stage (`training.coupon_step`)."""

    source: Path | None = None
    """The Complete Journey raw files whose campaigns, coupons and redemptions train the
    coupon stage (the directory `perkrank import-complete-journey` read; null: no stage)."""


class EvaluationConfig(Section):
    """Offline evaluation on the test window (definitions in training/window.py and metrics.py)."""

    k_values: tuple[Annotated[int, Field(gt=0, le=10_000)], ...] = Field((5, 10, 20), min_length=1)
    """List lengths at which every metric is reported; the main report table uses k=10."""
    max_members: int | None = Field(None, gt=0, le=MAX_COUNT)
    """Evaluate on a seeded sample of test members (None: all of them)."""


class RegistryConfig(Section):
    """Where training logs and registers models (see `perkrank.models.registry`)."""

    tracking_uri: str = Field("sqlite:///var/mlflow/mlflow.db", validate_default=True)
    """The MLflow store; the environment variable MLFLOW_TRACKING_URI wins when set."""
    model_name: str = "perkrank-offers"
    experiment: str = "perkrank"
    promote_metric: str = "ndcg@10"
    promote_margin: float = Field(0.0, ge=0, le=1e6)
    """The challenger must beat the champion's `promote_metric` by more than this."""

    @field_validator("tracking_uri")
    @classmethod
    def _environment_wins(cls, tracking_uri: str) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri


class TrainConfig(PerkrankSettings):
    """configs/train.yaml — `PERKRANK_TRAIN_…` overrides."""

    model_config = SettingsConfigDict(env_prefix="PERKRANK_TRAIN_")

    seed: int = Field(42, ge=0, lt=2**32)
    threads: int = Field(2, gt=0, le=1024)
    deterministic: bool = True
    """Fit BPR and LightFM on one thread (their parallel updates take no locks), so the same
    data, config and seed give the same metrics; ALS is reproducible on `threads` threads."""
    split: SplitConfig = SplitConfig()
    interactions: InteractionConfig = InteractionConfig()
    als: AlsConfig = AlsConfig()
    bpr: BprConfig = BprConfig()
    lightfm: LightFMConfig = LightFMConfig()
    blend: BlendConfig = BlendConfig()
    ranker: RankerConfig = RankerConfig()
    coupons: CouponConfig = CouponConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    registry: RegistryConfig = RegistryConfig()
    privacy: TrainingPrivacy = TrainingPrivacy()
    offer_rate_weight: float = Field(1.0, ge=0, le=100)
    """With `--events`, the weight of the offer-level response prior added to each offer's
    score: weight · log(smoothed rate / global rate) (`models.offer_rates`; 0: off)."""


# ---------------------------------------------------------------- serving


class ServeConfig(PerkrankSettings):
    """configs/serve.yaml — `PERKRANK_…` overrides (e.g. PERKRANK_REDIS_URL)."""

    model_config = SettingsConfigDict(env_prefix="PERKRANK_")

    host: str = "127.0.0.1"
    port: int = Field(8000, gt=0, lt=65536)
    redis_url: str | None = None
    """None: the in-process store (one process, state lost on exit); `redis://…` one server;
    `redis+cluster://host:port[,host:port...]` Redis Cluster."""
    key_prefix: str = Field("perkrank", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    store_timeout_ms: int = Field(100, gt=0, le=60_000)
    model_uri: str = "models:/perkrank-offers@champion"
    """An MLflow model URI or a local bundle directory."""
    tracking_uri: str = "sqlite:///var/mlflow/mlflow.db"
    model_cache_dir: Path = Path("var/model-cache")
    """Registered versions are downloaded here once (name/version) and reused on restart."""
    caps_path: Path = CONFIG_DIR / "caps.yaml"
    """The initial frequency-cap rules (a CapsConfig file): stored as caps version 1 when the
    store holds no caps yet; after that `PUT /v1/caps` changes them."""
    model_poll_seconds: float = Field(30.0, gt=0, le=86_400)
    """How often each process checks the registry for a new champion (and on
    `POST /v1/admin/reload`)."""
    min_known_members: float = Field(0.9, ge=0, le=1)
    """A new model version is swapped in only if its ranker has learned vectors for at least
    this share of the catalog's members (else it is logged and the old one keeps serving): a
    model trained on another program's or a truncated data set would rank nearly everyone as
    a cold member."""
    catalog_date: date | None = None
    """Serve the offers valid on this date (None: today, UTC); for demos and replays."""
    default_limit: int = Field(10, gt=0, le=1000)
    max_limit: int = Field(50, gt=0, le=1000)
    max_offers_per_partner: int = Field(2, gt=0, le=1000)
    candidate_pool_multiplier: int = Field(4, gt=0, le=100)
    candidate_pool_margin: int = Field(20, ge=0, le=100_000)
    """Each order sends its best `limit × multiplier + margin` eligible offers to the store, so
    that opt-outs, caps and the per-partner limit can skip some and still fill `limit`."""
    member_cache_size: int = Field(10_000, ge=0, le=1_000_000)
    """Known members' pre-selection work (shortlist, second stage, candidates) each ranker
    keeps for their next request of the same segment and day (LRU; ~9 KB each at the default
    pool; 0: none). Opt-outs and caps are applied by the store at request time, so a kept
    entry never changes an answer."""
    value_weight: float = Field(0.0, ge=0, le=100)
    """λ of the ranking formula (README "Ranking formula", `models.value`): how much an offer's
    net value to the program (partner funding − reward cost, scaled to [-1, 1]) moves it
    against relevance; 0 ranks by relevance alone."""
    default_region: str = "unknown"
    default_tier: Literal["base", "silver", "gold", "vip"] = "base"
    app_api_keys: str = ""
    """Comma-separated `name:key` pairs (or bare keys) that may read offers and send events."""
    admin_api_keys: str = ""
    """Comma-separated `name:key` pairs (or bare keys) that may change preferences and caps.
    With no key at all the service refuses to start."""
    max_in_flight: int = Field(64, gt=0, le=10_000)
    """Requests one process runs at once; more wait in a queue of `max_queued`."""
    max_queued: int = Field(256, ge=0, le=100_000)
    """Requests waiting for one of the `max_in_flight` slots (FIFO); beyond it, 503 at once."""
    queue_timeout_ms: int = Field(500, gt=0, le=60_000)
    """How long a request may wait in the queue before it is answered 503."""
    max_connections: int = Field(1024, gt=0, le=1_000_000)
    """Open connections one process accepts (idle keep-alive ones included); beyond it uvicorn
    answers 503 (plain text) at once."""
    max_events_per_request: int = Field(500, gt=0, le=100_000)
    """Events one `POST /v1/events` may carry; a larger batch is refused with 413."""
    max_batch_decisions: int = Field(1000, gt=0, le=100_000)
    """Members one `POST /v1/decisions:batch` may carry; a larger batch is refused with 413."""
    events_kept: int = Field(1_000_000, gt=0, le=MAX_COUNT)
    """Events the store keeps for `perkrank events export` (the oldest are dropped; Redis trims
    its stream approximately, MAXLEN ~)."""
    decisions_kept: int = Field(1_000_000, gt=0, le=MAX_COUNT)
    """Offer decisions the store keeps for `perkrank decisions export` (bounded like events)."""
    opentelemetry: bool = False
    """FastAPI's native OpenTelemetry spans, metrics and logs, sent to the global providers
    (an OpenTelemetry SDK must be configured). Off: no per-request tracing cost; Prometheus
    metrics at /metrics are always on."""
    # Request limits (perkrank.serving.api.limits): checked before a body is read or parsed.
    max_json_body_bytes: int = Field(1_048_576, gt=0)
    """Largest JSON body (events, preferences, caps); a larger one is refused with 413."""
    max_upload_bytes: int = Field(67_108_864, gt=0)
    """Largest offers file `PUT /v1/admin/offers` takes as sent (gzipped or not); else 413."""
    max_upload_table_bytes: int = Field(67_108_864, gt=0)
    """Largest offers table an upload may hold uncompressed: a gzip's decompressed size, a
    Parquet file's uncompressed column data (from its metadata), a CSV's size; else 413."""
    privacy: ServingPrivacy = ServingPrivacy()
    """Sensitive categories, reason texts per language, retention (perkrank.privacy_config)."""
    mechanics: ProgramMechanics = ProgramMechanics()
    """Time zones, channels, occasion offers, re-shown decisions (perkrank.mechanics_config)."""


# ---------------------------------------------------------------- loading

SettingsT = TypeVar("SettingsT", bound=BaseModel)


def load_config(settings_type: type[SettingsT], path: Path | str | None) -> SettingsT:
    """Read a YAML config (None: defaults only) into `settings_type`, env vars winning."""
    where = str(path) if path is not None else settings_type.__name__
    values = _read_yaml(Path(path)) if path is not None else {}
    try:
        return settings_type(**values)
    except ValidationError as error:
        raise ConfigError(_describe(where, error)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return values


def _describe(where: str, error: ValidationError) -> str:
    problems = [
        f"{where}: {'.'.join(str(part) for part in item['loc']) or '(top level)'}: {item['msg']}"
        for item in error.errors()
    ]
    return "\n".join(problems)
