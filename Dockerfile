# Image for every Watchkeeper role in docker-compose.yml (one process per role).
FROM python:3.11-slim
# pango/harfbuzz and Noto CJK: the compliance reports' PDFs (reports/, WeasyPrint).
RUN apt-get update && apt-get install -y --no-install-recommends libpcap0.8 \
    libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/* && useradd --system --create-home watchkeeper
WORKDIR /opt/watchkeeper
COPY pyproject.toml README.md ./
COPY watchkeeper ./watchkeeper
COPY collectors ./collectors
COPY detectors ./detectors
COPY api ./api
COPY app ./app
COPY reports ./reports
# The capture kernels are compiled ahead of time (collectors/capture/kernels/build.py needs a C
# compiler only while building; run from / so the installed package gets the module).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir . && (cd / && python -m collectors.capture.kernels.build) \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
USER watchkeeper
ENTRYPOINT ["watchkeeper"]
