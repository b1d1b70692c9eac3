"""Settings, from the environment (prefix PHM_) or arguments. The one place config is read."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHM_", env_file=".env", extra="ignore")

    # sqlite+aiosqlite:///path (embedded default) or postgresql+asyncpg://user@host:port/db
    database_url: str = "sqlite+aiosqlite:///./var/phm.db"
    # Public base URL used in Location headers and Bundle links; derived from the request if empty.
    base_url: str = ""
    default_page_size: int = 20
    max_page_size: int = 1000
    max_body_bytes: int = 64 * 1024 * 1024
    # Reject references to resources that do not exist on the server (HAPI's default).
    enforce_referential_integrity: bool = True
    # "full": the R4 definition walker and fhir.resources' models; "structural": the walker
    # only (types, cardinality, required bindings, primitive formats), several times faster.
    validation: str = "full"
    # Apply pending migrations when the server starts.
    auto_migrate: bool = True
    # Load the ValueSets, CodeSystems and Measures under fhir_profiles/ at start-up.
    load_profiles: bool = True
    # Seconds between two rounds of the background stratification of changed patients
    # (0: no background task; `phm stratify` and `POST /$stratify` still work).
    stratify_interval: float = 2.0
    # The stratification map (a JSON file); empty: fhir_profiles/stratification/default.json.
    stratification_map: str = ""
    # Reference date of the stratification (YYYY-MM-DD); empty: today (UTC).
    stratify_date: str = ""
    # Connections per worker process.
    pool_size: int = 10
    log_level: str = "info"
