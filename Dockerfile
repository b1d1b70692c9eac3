# phm-fhir: FHIR R4 server. Build: docker build -t phm-fhir .
# Run:   docker run -p 8000:8000 -e PHM_DATABASE_URL=postgresql+asyncpg://user:pw@db/phm phm-fhir
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PHM_DATABASE_URL=sqlite+aiosqlite:////data/phm.db

WORKDIR /srv/phm
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY fhir_profiles ./fhir_profiles
RUN pip install -e . \
    && useradd --system --uid 10001 --home /srv/phm phm \
    && mkdir -p /data && chown phm /data

USER phm
EXPOSE 8000
CMD ["sh", "-c", "phm serve --host 0.0.0.0 --port 8000 --workers ${PHM_WORKERS:-2}"]
