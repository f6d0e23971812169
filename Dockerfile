FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY dataflows dataflows
COPY domain domain
COPY schemas schemas
COPY stores stores
COPY ws ws
COPY ops ops
COPY observability observability
RUN pip install --no-cache-dir .
ENV STATE_DIR=/app/.state
