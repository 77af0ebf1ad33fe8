# syntax=docker/dockerfile:1
# Build stage: a virtualenv with the project and its runtime dependencies.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md alembic.ini ./
COPY backend ./backend
COPY worker ./worker
COPY web ./web
RUN pip install --upgrade pip && pip install .

# Runtime stage: no compilers, a non-root user, the venv and the code only.
FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production HOST=0.0.0.0 PORT=8000 LOG_FORMAT=json
RUN groupadd --system --gid 10001 orderflow \
 && useradd --system --uid 10001 --gid orderflow --home /app --shell /usr/sbin/nologin orderflow
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# The code belongs to root and is read-only for the app user; only var/ is writable
# (metrics files of `serve`, Beat's schedule; an emptyDir in Kubernetes).
COPY alembic.ini ./
COPY backend ./backend
COPY worker ./worker
COPY web ./web
RUN mkdir -p /app/var && chown orderflow:orderflow /app/var
USER 10001:10001
EXPOSE 8000 9808
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/api/v1/health\", timeout=2)"]
# The API (uvicorn, API_WORKERS processes, metrics in multiprocess mode, JSON logs);
# compose and Kubernetes override the command for migrate, worker and beat.
CMD ["python", "-m", "backend", "serve"]
