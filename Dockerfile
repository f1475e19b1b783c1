# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SENDCONN_VAR_DIR=/var/lib/sendconn

WORKDIR /app
RUN useradd --system --home-dir /app sendconn
# python-ldap (django-auth-ldap, directory sign-in) compiles against OpenLDAP's and Cyrus SASL's headers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libldap2-dev libsasl2-dev \
    && rm -rf /var/lib/apt/lists/*

COPY . /app
# Editable, so templates/ and static/ stay next to the code (settings.BASE_DIR is the source tree).
RUN pip install -e . \
    && SECRET_KEY=build-only-collectstatic python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p "$SENDCONN_VAR_DIR/logs" "$SENDCONN_VAR_DIR/metrics" && chown -R sendconn "$SENDCONN_VAR_DIR"

USER sendconn
EXPOSE 8000
CMD ["gunicorn", "sendconn.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--access-logfile", "-", "--no-control-socket"]
