# pygeoapi with the pygeoapi-argo process manager, served by gunicorn (`pygeoapi-argo serve`).
# Slim and non-root; configuration and credentials come at run time (a mounted pygeoapi.yml, the
# Argo token as a file, S3 credentials as AWS_* variables), never from the image.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pygeoapi_argo ./pygeoapi_argo
# The postgresql extra: a PostgreSQL job store lets several replicas share the jobs.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir '.[postgresql]'

FROM python:3.12-slim
COPY --from=build /opt/venv /opt/venv
# One writable place for the job store (SQLite), the generated OpenAPI document and the metric files.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/pygeoapi-argo --create-home pygeoapi
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /var/lib/pygeoapi-argo
EXPOSE 5000
# /conformance is answered by pygeoapi alone: the container stays healthy while Argo is away
# (the manager answers 503 for what needs Argo), so an Argo outage does not restart pygeoapi.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/conformance?f=json', timeout=4)"]
ENTRYPOINT ["pygeoapi-argo"]
CMD ["serve", "--config", "/etc/pygeoapi/pygeoapi.yml", "--host", "0.0.0.0", "--port", "5000", \
     "--workers", "2", "--state-dir", "/var/lib/pygeoapi-argo/state"]
