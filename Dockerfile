# One image for every paysync component: `paysync webhook | poll | stream | sink | replay | dlq …`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY paysync ./paysync
COPY core ./core
COPY schemas ./schemas
COPY producers ./producers
COPY streams ./streams
COPY sinks ./sinks
COPY emulators ./emulators
COPY ops ./ops
# the SFDX package: the emulator and `paysync doctor` read the data model from it
COPY salesforce ./salesforce
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/paysync --create-home paysync

USER paysync
ENV PAYSYNC_HOME=/var/lib/paysync
WORKDIR /var/lib/paysync
ENTRYPOINT ["paysync"]
CMD ["--help"]
