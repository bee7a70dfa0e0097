# Spacetime Lens: the API (default command) or a job worker (`stlens worker`). Slim, non-root, healthcheck.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    STLENS_DATA_DIR=/data

WORKDIR /app
RUN useradd --create-home --uid 10001 stlens && mkdir -p /data && chown stlens /data

COPY pyproject.toml README.md ./
COPY backend ./backend
COPY frontend ./frontend
RUN pip install --no-compile -e .

USER stlens
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4).status != 200)"
# The API; `stlens worker` (same image, STLENS_REDIS_URL set) runs jobs for `serve --workers external`.
CMD ["stlens", "serve", "--host", "0.0.0.0", "--port", "8000", "--redis-url", "redis://redis:6379/0"]
