FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app
COPY . .
RUN pip install --no-cache-dir .

# A non-editable install puts the package in site-packages, where Settings'
# repo-relative defaults (topics.yaml, schemas/, shipped templates) do not
# exist, so point them at the copy of the repo in /app.
ENV HERALD_TOPICS_FILE=/app/topics.yaml \
    HERALD_SCHEMAS_DIR=/app/schemas \
    HERALD_TEMPLATES_DIR=/app/pipeline/shipped_templates \
    HERALD_HOME=/data

# Run as a non-root user. /data is created here, owned by that user, so a named
# volume mounted on it starts out writable.
RUN useradd --create-home --uid 10001 herald \
    && mkdir -p /data \
    && chown herald:herald /data
USER herald

ENTRYPOINT ["herald"]
