"""Verify delivery's data: runs and their steps (Exchange Online's "Validate this connector").

The tables keep the names they had in the ops app (``ops_verificationrun``, ``ops_verificationstep``): the models
moved to this app in the state of the migrations only, the database never changed.
"""

from django.db import models
from django.utils import timezone

from sendconn.connectors.models import SendConnector


class VerificationStatus(models.TextChoices):
    RUNNING = "Running", "Running"
    SUCCEEDED = "Succeeded", "Succeeded"
    FAILED = "Failed", "Failed"


class StepName(models.TextChoices):
    RESOLVE = "Resolve", "Resolve"
    CONNECTION = "Connection", "Connection"
    EHLO = "SMTP EHLO", "SMTP EHLO"
    TLS = "TLS", "TLS"
    AUTHENTICATION = "Authentication", "Authentication"
    SEND = "Send test email", "Send test email"


class StepStatus(models.TextChoices):
    PENDING = "Pending", "Pending"
    RUNNING = "Running", "Running"
    SUCCEEDED = "Succeeded", "Succeeded"
    FAILED = "Failed", "Failed"
    SKIPPED = "Skipped", "Skipped"


class VerificationRun(models.Model):
    """One "Verify delivery" of a connector: a test message to ``recipients`` through it, step by step."""

    connector = models.ForeignKey(SendConnector, on_delete=models.CASCADE, related_name="verification_runs")
    connector_name = models.CharField(max_length=64)  # as it was named when the run was requested
    requested_by = models.CharField(max_length=150)
    requested_at = models.DateTimeField(default=timezone.now)
    server_name = models.CharField(max_length=64)  # the source server whose worker sends the test message
    started_at = models.DateTimeField(null=True, blank=True)  # when a worker took the run (at most one does)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.RUNNING)
    recipients = models.JSONField(default=list)  # [str]: the test recipients' SMTP addresses
    failed_step = models.ForeignKey(
        "VerificationStep", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.TextField(blank=True)  # Exchange-style reply: "450 4.4.316 Connection refused"
    hint = models.TextField(blank=True)  # one line: what to check
    transcript = models.TextField(blank=True)  # the SMTP conversation, protocol-log style

    class Meta:
        db_table = "ops_verificationrun"
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["connector", "-requested_at"], name="verificationrun_connector_idx")]

    def __str__(self) -> str:
        return f"{self.connector_name} {self.requested_at:%Y-%m-%d %H:%M:%S} {self.status}"

    @property
    def is_running(self) -> bool:
        return self.status == VerificationStatus.RUNNING


class VerificationStep(models.Model):
    """One task of a run (Resolve, Connection, SMTP EHLO, TLS, Authentication, Send test email) for a next hop."""

    run = models.ForeignKey(VerificationRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=24, choices=StepName.choices)
    next_hop = models.CharField(max_length=1024)  # the recipient domain (MX) or the smart-host set it tests
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    details = models.TextField(blank=True)  # first line: the summary; then what was found or said
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)

    class Meta:
        db_table = "ops_verificationstep"
        ordering = ["position"]
        constraints = [models.UniqueConstraint("run", "position", name="verificationstep_position_unique")]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"

    @property
    def summary(self) -> str:
        return self.details.partition("\n")[0]

    @property
    def more_details(self) -> str:
        return self.details.partition("\n")[2]
