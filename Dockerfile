# Image for every Watchkeeper role in docker-compose.yml (one process per role).
# The web pages (console, wall screen) are built in a Node stage; only web/dist is kept.
FROM node:20-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./
RUN npm run build

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
COPY playbooks ./playbooks
COPY --from=web /web/dist ./web/dist
ENV WATCHKEEPER_WEB_ROOT=/opt/watchkeeper/web/dist
# The capture kernels and the detection path are compiled ahead of time
# (collectors/capture/kernels/build.py, watchkeeper/compiled_build.py need a C compiler and
# Cython only while building; run from / so the installed package gets the modules).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir '.[compiled]' \
    && (cd / && python -m collectors.capture.kernels.build && python -m watchkeeper.compiled_build) \
    && pip uninstall -y cython \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
USER watchkeeper
ENTRYPOINT ["watchkeeper"]
