# A small image: wheels are built in the first stage, the final one holds only Python and the installed bot.
# ffmpeg and libopus come inside the imageio-ffmpeg and av wheels, so no system packages are needed.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --create-home --uid 10001 bot \
    && mkdir -p /app/data && chown bot:bot /app/data
USER bot
WORKDIR /app
# The SQLite database (DATABASE_PATH defaults to data/bot.sqlite3, relative to /app).
VOLUME ["/app/data"]
# Webhook mode listens here (WEBHOOK_PORT); polling mode opens no port.
EXPOSE 8080
CMD ["python", "-m", "bot"]
