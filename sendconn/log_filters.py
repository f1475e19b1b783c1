"""Logging filters for the processes' console logs."""

import logging


class RefusalsWithoutTraceback(logging.Filter):
    """``django.request`` logs a refused request (403, 404, 405) with the exception that refused it; the warning
    line says everything, and a traceback per refusal made the log look like the product was failing."""

    def filter(self, record):
        if getattr(record, "status_code", 500) < 500:
            record.exc_info = record.exc_text = None
        return True


class AxesWithoutRequest(logging.Filter):
    """django-axes logs an error for every sign-in it can't count for want of an HTTP request: smtpd's AUTH,
    which isn't throttled by axes. Those are expected, not failures."""

    def filter(self, record):
        message = record.getMessage()
        return not ("None request" in message or "without a request" in message)
