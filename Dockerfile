# Image for every Watchkeeper role in docker-compose.yml (one process per role).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpcap0.8 \
    && rm -rf /var/lib/apt/lists/* && useradd --system --create-home watchkeeper
WORKDIR /opt/watchkeeper
COPY pyproject.toml README.md ./
COPY watchkeeper ./watchkeeper
COPY collectors ./collectors
COPY detectors ./detectors
COPY api ./api
RUN pip install --no-cache-dir .
USER watchkeeper
ENTRYPOINT ["watchkeeper"]
