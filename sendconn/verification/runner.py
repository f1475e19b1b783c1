"""Verify delivery's run: a real test message through one Send connector, step by step, as Exchange Online's
"Validate this connector" does (reference §6).

    run = services.start_verification(caller, connector, ["julia@fabrikam.com"])   # web and shell
    run_verification(run.pk)                                                       # the source server's worker

``run_verification`` sends the test message **through that connector, whatever routing would choose**: to its
smart hosts, or to the MX hosts of each recipient domain, found as delivery finds them
(``transport.dns.resolve_next_hop``, DowngradeDnsFailures and UseExternalDNSServersEnabled included). Per next
hop the steps are Resolve, Connection, SMTP EHLO, TLS, Authentication and Send test email; every step row is
saved as it changes, so the run page shows progress live. A failure names its step, gets the same response the
queue would show for it (``451 4.4.0 DNS query failed…``, ``450 4.4.316 Connection refused``…) and a one-line
hint. Nothing is queued: the message goes straight through the SMTP session, which the Send protocol log records
when the connector's ProtocolLoggingLevel is Verbose (as it records the connector's deliveries).
"""

import logging
import re
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from django.conf import settings
from django.utils import timezone

from sendconn.connectors.crypto import CredentialKeyError
from sendconn.connectors.models import ProtocolLoggingLevel, SmartHostAuthMechanism, TransportServer
from sendconn.connectors.servers import local_server
from sendconn.observability import metrics
from sendconn.transport.dns import DnsError, Target, get_resolver, resolve_next_hop
from sendconn.transport.protocol_log import ProtocolLog, SessionTranscript
from sendconn.transport.smtp_client import (
    AUTH,
    EHLO,
    STARTTLS,
    Reply,
    SessionOptions,
    SmtpSession,
    SmtpSessionError,
    Transcript,
)

from .models import StepName, StepStatus, VerificationRun, VerificationStatus, VerificationStep
from .selectors import next_hops

log = logging.getLogger(__name__)

TEST_SUBJECT = "Test email for connector validation"
_QUEUE_ID = (re.compile(r"queued as ([\w.-]+)", re.I), re.compile(r"InternalId=(\d+)"), re.compile(r"\bid=([\w.-]+)"))


def run_verification(run_id: int) -> VerificationRun | None:
    """Run the verification ``run_id`` here, once (a second delivery of the task finds it taken); return it."""
    taken = VerificationRun.objects.filter(
        pk=run_id, status=VerificationStatus.RUNNING, started_at__isnull=True
    ).update(started_at=timezone.now())
    run = VerificationRun.objects.select_related("connector").filter(pk=run_id).first()
    if run is None:  # the connector (and its runs) was removed meanwhile
        return None
    if taken:
        _Verification(run).execute()
    elif run.is_running:
        # Taken before and still running: the worker that had it died (the task came back after a worker loss).
        _Verification(run).abandon()
    return run


class _Verification:
    def __init__(self, run):
        self.run = run
        self.connector = run.connector
        self.server = local_server()
        self.steps = list(run.steps.all())
        self.lines = []  # the whole run's transcript

    def execute(self):
        try:
            hops = next_hops(self.connector, self.run.recipients, self.server)
            planned = list(dict.fromkeys(step.next_hop for step in self.steps))
            if list(hops) != planned:
                self._fail_unstarted(
                    "450 4.4.317 Cannot connect to remote server [the Send connector's routing "
                    "changed since the verification was requested]",
                    "Verify again: the connector now routes these recipients differently.",
                )
            else:
                for hop, recipients in hops.items():
                    _Hop(self, hop, recipients, [s for s in self.steps if s.next_hop == hop]).execute()
        except Exception as error:  # a bug or a time limit: the run must still end, with what happened
            log.exception("Verification %s of %s failed unexpectedly", self.run.pk, self.run.connector_name)
            self._fail_unstarted(
                f"451 4.3.0 Other or undefined mail system status [{type(error).__name__}]",
                f"The verification stopped unexpectedly; the worker's log on {self.server.name} has the details.",
            )
        self.finish()

    def abandon(self):
        self.lines = self.run.transcript.splitlines()
        self._fail_unstarted(
            "451 4.3.0 The worker running the verification stopped before it finished",
            f"Check the transport service (Celery worker) on {self.run.server_name}, then verify again.",
        )
        self.finish()

    def _fail_unstarted(self, error, hint):
        """Fail the running step (else the first pending one) with ``error``; skip the rest."""
        steps = [s for s in self.steps if s.status in (StepStatus.RUNNING, StepStatus.PENDING)]
        if not steps:
            return
        running = next((s for s in steps if s.status == StepStatus.RUNNING), steps[0])
        self.save(running, StepStatus.FAILED, error, error=error, hint=hint)
        for step in steps:
            if step is not running:
                self.save(step, StepStatus.SKIPPED, "Not run: an earlier step failed.")

    def save(self, step, status, details=None, *, error="", hint=""):
        """Record a step's new status (and the transcript so far) at once: the page polls these rows."""
        now = timezone.now()
        step.status = status
        if details is not None:
            step.details = details
        if status == StepStatus.RUNNING:
            step.started_at, step.finished_at, step.duration = now, None, None
        elif status in (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED):
            step.finished_at = now
            step.duration = now - step.started_at if step.started_at else None
        else:
            step.started_at = step.finished_at = step.duration = None
        step.save(update_fields=["status", "details", "started_at", "finished_at", "duration"])
        if status == StepStatus.FAILED and not self.run.failed_step_id:
            self.run.failed_step, self.run.error, self.run.hint = step, error, hint
        self.run.transcript = "\n".join(self.lines)
        self.run.save(update_fields=["transcript", "failed_step", "error", "hint"])

    def log(self, local, remote, kind, data, context):
        at = timezone.now().strftime("%H:%M:%S.%f")[:-3]
        if kind == "+":
            data = f"{local} connected to {remote}"
        line = f"{at} {kind} {data}".rstrip() + (f" [{context}]" if context else "")
        self.lines.append(line)

    def finish(self):
        for step in self.steps:
            if step.status in (StepStatus.PENDING, StepStatus.RUNNING):  # never left half-done
                self.save(step, StepStatus.SKIPPED, "Not run.")
        failed = any(step.status == StepStatus.FAILED for step in self.steps) or self.run.error
        self.run.status = VerificationStatus.FAILED if failed else VerificationStatus.SUCCEEDED
        self.run.finished_at = timezone.now()
        self.run.transcript = "\n".join(self.lines)
        self.run.save(update_fields=["status", "finished_at", "transcript"])
        metrics.verification_finished(self.run.status)


_STATE_FIELDS = ["status", "details", "started_at", "finished_at", "duration"]


@dataclass(frozen=True)
class _Failure:
    """An address that failed: the step it failed at, and the steps as they stood then."""

    step: VerificationStep
    target: Target
    error: SmtpSessionError
    states: dict[int, tuple]
    exchange: list[str]


class _Hop:
    """The steps for one next hop. It is the SMTP session's transcript, so it sees each line and connection as
    they happen, and its ``on_stage`` callback: together they move the steps along."""

    def __init__(self, verification, next_hop, recipients, steps):
        self.verification = verification
        self.connector = verification.connector
        self.next_hop = next_hop
        self.recipients = recipients
        self.steps = {step.name: step for step in steps}
        self.local = self.remote = ""
        self._target: Target | None = None
        self._session: SmtpSession | None = None
        self.exchange = []  # "> …" / "< …" lines since the running step began
        self.attempts = []  # failures of the targets tried before the current one
        self.tls_failure = ""  # opportunistic TLS that failed to negotiate (then retried in the clear)
        self._options: SessionOptions | None = None
        self._connecting_since = 0.0
        # A Verbose connector logs the test sessions too, as its deliveries: one protocol-log session per target.
        verbose = self.connector.protocol_logging_level == ProtocolLoggingLevel.VERBOSE
        self.protocol_log = ProtocolLog() if verbose else None
        self.protocol: SessionTranscript | None = None

    # --- set before the session runs: its callbacks, the send and the hints find them ---

    @property
    def options(self) -> SessionOptions:
        assert self._options is not None, "set before the first target is tried"
        return self._options

    @property
    def target(self) -> Target:
        assert self._target is not None, "set by _attempt"
        return self._target

    @property
    def session(self) -> SmtpSession:
        assert self._session is not None, "set by _attempt"
        return self._session

    # --- the transcript protocol (see SmtpSession) ---

    def connected(self, local_endpoint, remote_endpoint):
        if self.protocol is not None:
            self.protocol.connected(local_endpoint, remote_endpoint)
        self.local, self.remote = local_endpoint, remote_endpoint
        if not local_endpoint:  # about to connect (again)
            self._connecting_since = time.monotonic()
            return
        took = f"{(time.monotonic() - self._connecting_since) * 1000:.0f} ms"
        connection = self.steps[StepName.CONNECTION]
        if connection.status == StepStatus.RUNNING:
            lines = [f"Connected to {remote_endpoint} ({self.target.hostname}) from {local_endpoint} in {took}"]
            if self.attempts:
                lines += ["Tried before:", *self.attempts]
            self._save(connection, StepStatus.SUCCEEDED, "\n".join(lines))
            self._begin(StepName.EHLO)
        else:  # the same host again, without TLS
            self.exchange = []
            self._save(
                connection,
                StepStatus.SUCCEEDED,
                f"{connection.details}\nConnected again in {took} to continue without TLS",
            )

    def event(self, kind, data="", context=""):
        if self.protocol is not None:
            self.protocol.event(kind, data, context)
        self.verification.log(self.local, self.remote, kind, data, context)
        if kind in "<>":
            self.exchange.append(f"{kind} {data}")
        elif kind == "*" and context == "TLS negotiation failed":
            self.tls_failure = data

    def for_another_connection(self) -> Transcript:
        """Never asked: each session here has a single target (the hop tries its targets itself, step by step),
        so SmtpSession has no later target to open a connection beside this one to."""
        raise AssertionError("a verification session has one target")

    # --- the session's progress ---

    def on_stage(self, stage):
        session, options = self.session, self.options
        if stage == EHLO:
            self._save(self.steps[StepName.EHLO], StepStatus.SUCCEEDED, self._ehlo_details())
            tls = self.steps[StepName.TLS]
            if self.tls_failure and not options.require_tls:
                self._save(
                    tls,
                    StepStatus.SKIPPED,
                    f"STARTTLS failed to negotiate ({self.tls_failure}); the message "
                    "goes in the clear, as the connector doesn't require TLS.",
                )
            elif options.require_tls or ("starttls" in session.extensions and not options.ignore_starttls):
                self._begin(StepName.TLS)  # negotiated next; fails at once when required but not offered
                return
            else:
                reason = (
                    "IgnoreSTARTTLS is $true" if options.ignore_starttls else "the remote server didn't offer STARTTLS"
                )
                self._save(tls, StepStatus.SKIPPED, f"Not used: {reason}, and the connector doesn't require TLS.")
            self._authentication_next()
        elif stage == STARTTLS:
            self._save(self.steps[StepName.TLS], StepStatus.SUCCEEDED, self._tls_details())
            self._authentication_next()
        elif stage == AUTH:
            sent = next((line for line in reversed(self.exchange) if line.startswith("> AUTH ")), "> AUTH")
            mechanism = sent.split()[2] if len(sent.split()) > 2 else ""
            reply = next((line[2:] for line in reversed(self.exchange) if line.startswith("< 235")), "235")
            self._save(
                self.steps[StepName.AUTHENTICATION],
                StepStatus.SUCCEEDED,
                f"Authenticated as {session.authenticated_as} with AUTH {mechanism}: {reply}\n"
                f"Mechanism on the connector: {options.auth_mechanism}",
            )

    def _authentication_next(self):
        if self.options.basic_auth:
            self._begin(StepName.AUTHENTICATION)
        else:
            mechanism = self.connector.smart_host_auth_mechanism
            reason = (
                "No smart host authentication is configured."
                if mechanism == SmartHostAuthMechanism.NONE
                else f"{mechanism}: no SMTP authentication is sent."
            )
            self._save(self.steps[StepName.AUTHENTICATION], StepStatus.SKIPPED, reason)

    # --- the steps ---

    def execute(self):
        try:
            self._execute()
        finally:
            self._end_protocol_session()

    def _execute(self):
        targets = self._resolve()
        if targets is None:
            return
        try:
            self._options = SessionOptions.for_connector(
                self.connector,
                self.verification.server.fqdn,
                connect_timeout=settings.SENDCONN_VERIFY_TIMEOUT,
                command_timeout=settings.SENDCONN_VERIFY_TIMEOUT,
            )
        except CredentialKeyError as error:
            self._fail(
                self.steps[StepName.AUTHENTICATION],
                f"451 4.7.0 The smart host credential can't be decrypted [{error}]",
                "The credential key changed (SENDCONN_CREDENTIAL_KEY or SECRET_KEY): enter the smart host "
                "password again with Set-SendConnector -AuthenticationCredential.",
            )
            return
        failures = []
        for target in targets[: self.options.max_addresses]:
            self._attempt(target)
            try:
                self.session.open()
            except SmtpSessionError as error:  # the next address, as delivery would
                self.attempts.append(f"{target.endpoint} ({target.hostname}): {error.response}")
                failures.append(_Failure(self._running(), target, error, self._states(), self.exchange))
                continue
            try:
                self._send()
            finally:
                self.session.close()
            return
        self._report(failures)

    def _report(self, failures):
        """Every address failed: show the one that got furthest (the first of those), naming the others, so a
        certificate failure on the first MX host isn't hidden behind a refused connection on the second."""
        furthest = max(failures, key=lambda failure: failure.step.position)
        for step in self.steps.values():
            for field, value in zip(_STATE_FIELDS, furthest.states[step.pk], strict=True):
                setattr(step, field, value)
            step.save(update_fields=_STATE_FIELDS)
        self._target, self.exchange = furthest.target, furthest.exchange
        self.attempts = [line for failure, line in zip(failures, self.attempts, strict=True) if failure is not furthest]
        connection = self.steps[StepName.CONNECTION]
        if furthest.step.name != StepName.CONNECTION and self.attempts:
            self._save(
                connection,
                StepStatus.SUCCEEDED,
                "\n".join([connection.summary, "Other addresses tried:", *self.attempts]),
            )
        error = furthest.error
        self._fail(furthest.step, error.response, hint_for(error.reply, furthest.step.name, self), detail=error.detail)

    def _states(self):
        return {step.pk: tuple(getattr(step, field) for field in _STATE_FIELDS) for step in self.steps.values()}

    def _resolve(self):
        step = self.steps[StepName.RESOLVE]
        self._begin(StepName.RESOLVE)
        connector = self.connector
        external = connector.use_external_dns_servers_enabled
        nameservers = get_resolver(external).nameservers  # the resolver resolve_next_hop uses
        servers = ", ".join(f"{address}:{port}" for address, port in nameservers) or "the system's"
        which = "external DNS servers" if external else "DNS servers"
        footer = f"Looked up with the {which} of {self.verification.server.name}: {servers}"
        if connector.dns_routing_enabled:
            lines = [f"MX records of {self.next_hop}:"]
        else:
            lines = [f"Smart hosts {self.next_hop}:"]

        def smart_host(host, found):
            if isinstance(found, DnsError):
                lines.append(f"{host}: {found.text}")
            else:
                lines.extend(f"{host} → {target.endpoint}" for target in found)

        try:
            targets = resolve_next_hop(
                self.next_hop,
                dns_routing=connector.dns_routing_enabled,
                smart_hosts=list(connector.smart_hosts.order_by("position").values_list("host", flat=True)),
                port=connector.port,
                external_dns=external,
                downgrade_dns_failures=connector.downgrade_dns_failures,
                on_smart_host=smart_host,
            )
        except DnsError as error:  # the queue's words for the same failure
            self._fail(step, error.response, hint_for_dns(self), detail="\n".join(lines[1:] + [footer]))
            return None
        if connector.dns_routing_enabled:
            lines += [f"MX {t.preference} {t.hostname} → {t.endpoint}" for t in targets]
        self._save(step, StepStatus.SUCCEEDED, "\n".join(lines + [footer]))
        return targets

    def _attempt(self, target):
        """A new target: the steps after Resolve start again from Connection."""
        self._end_protocol_session()
        if self.protocol_log is not None:
            run = self.verification.run
            self.protocol = self.protocol_log.session(self.connector.name)
            self.protocol.event("*", f"run {run.pk} requested by {run.requested_by}", "Verify delivery")
        self._target = target
        self.tls_failure = ""
        for name in (StepName.EHLO, StepName.TLS, StepName.AUTHENTICATION, StepName.SEND):
            if self.steps[name].status != StepStatus.PENDING:
                self._save(self.steps[name], StepStatus.PENDING, "")
        self._begin(StepName.CONNECTION)
        domain = self.next_hop if self.connector.dns_routing_enabled else ""
        self._session = SmtpSession(
            [target], self.options, transcript=self, recipient_domain=domain, on_stage=self.on_stage
        )

    def _end_protocol_session(self):
        if self.protocol is not None:
            self.protocol.close()
            self.protocol = None

    def _send(self):
        step = self.steps[StepName.SEND]
        self._begin(StepName.SEND)
        sender = settings.SENDCONN_VERIFY_SENDER or f"ConnectorValidation@{self.verification.server.fqdn}"
        content, message_id = test_message(self.verification.run, sender, self.recipients, self.verification.server)
        outcome = self.session.send(sender, self.recipients, content)
        said = self.exchange[:]
        failed = [(address, reply) for address, reply in outcome.per_recipient.items() if not reply.is_success]
        if outcome.error is not None:
            self._fail(
                step, outcome.error.response, hint_for(outcome.error.reply, StepName.SEND, self), detail="\n".join(said)
            )
        elif failed:
            address, reply = failed[0]
            self._fail(
                step,
                str(reply),
                hint_for(reply, StepName.SEND, self),
                detail="\n".join([f"{a}: {r}" for a, r in failed] + said),
            )
        else:
            reply = outcome.per_recipient[self.recipients[0]]
            queue_id = remote_queue_id(reply.text)
            lines = [
                f"Accepted for {len(self.recipients)} recipient(s) by {self.target.hostname}: {reply}",
                f"Remote queue ID: {queue_id}" if queue_id else "The remote server's reply names no queue ID.",
                f"Message-ID: {message_id}",
                f"From: {sender}",
                *said,
            ]
            self._save(step, StepStatus.SUCCEEDED, "\n".join(lines))

    def _ehlo_details(self):
        banner = []
        for line in self.exchange:
            if line.startswith(">"):
                break
            banner.append(line[2:])
        extensions = self.session.extensions
        listed = ", ".join(f"{k.upper()} {v}".strip() for k, v in extensions.items()) or "none (HELO)"
        return "\n".join([f"Banner: {' '.join(banner)}", f"Extensions: {listed}"])

    def _tls_details(self):
        tls, options = self.session.tls, self.options
        assert tls is not None  # on_stage(STARTTLS): TLS is up
        level = options.tls_auth_level if options.require_tls else ""
        outcome = {
            "": "Not validated: opportunistic TLS (RequireTLS is $false).",
            "EncryptionOnly": "Not validated: TlsAuthLevel EncryptionOnly only requires encryption.",
            "CertificateValidation": "Validated: the certificate chain is trusted "
            "(TlsAuthLevel CertificateValidation).",
            "DomainValidation": "Validated: the chain is trusted and the certificate names "
            f"{options.tls_domain or self.next_hop} (TlsAuthLevel DomainValidation).",
        }[level]
        expiry = tls.peer_not_after.strftime("%Y-%m-%d %H:%M:%S UTC") if tls.peer_not_after else "unknown"
        return "\n".join(
            [
                f"{tls.protocol} with {tls.cipher} ({tls.bits} bits)",
                outcome,
                f"Certificate subject: {tls.peer_subject}",
                f"Certificate issuer: {tls.peer_issuer}",
                f"Certificate expires: {expiry}",
                f"Certificate names: {', '.join(tls.peer_names) or 'none'}",
                f"Certificate thumbprint: {tls.peer_thumbprint}",
                f"Extensions after STARTTLS: {', '.join(k.upper() for k in self.session.extensions) or 'none'}",
            ]
        )

    def _running(self):
        return next((s for s in self.steps.values() if s.status == StepStatus.RUNNING), self.steps[StepName.CONNECTION])

    def _begin(self, name):
        self.exchange = []
        self._save(self.steps[name], StepStatus.RUNNING, "")

    def _fail(self, step, error, hint, detail=""):
        lines = [error, *self.exchange] if step.name != StepName.SEND else [error]
        if step.name == StepName.CONNECTION and self.attempts:
            lines += ["Other addresses tried:", *self.attempts]
        if detail:
            lines.append(detail)
        self._save(step, StepStatus.FAILED, "\n".join(dict.fromkeys(lines)), error=error, hint=hint)
        steps = list(self.steps.values())
        for later in steps[steps.index(step) + 1 :]:
            if later.status in (StepStatus.PENDING, StepStatus.RUNNING):
                self._save(later, StepStatus.SKIPPED, "Not run: an earlier step failed.")

    def _save(self, step, status, details, **failure):
        self.verification.save(step, status, details, **failure)


def test_message(
    run: VerificationRun, sender: str, recipients: list[str], server: TransportServer
) -> tuple[bytes, str]:
    """The test message (bytes) and its Message-ID."""
    message = EmailMessage()
    message_id = make_msgid("connectorvalidation", domain=server.fqdn)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = TEST_SUBJECT
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = message_id
    message["X-Sendconn-Verification"] = f"{run.connector_name}; run {run.pk}; requested by {run.requested_by}"
    message.set_content(
        f"This is a test message from sendconn. {run.requested_by} asked {server.name} to send it through the Send "
        f'connector "{run.connector_name}" to check that the connector delivers mail.\n\n'
        "No action is needed. You can delete this message.\n"
    )
    return message.as_bytes(policy=SMTP), message_id


def remote_queue_id(text: str) -> str:
    """The remote server's queue ID in its reply to DATA (Postfix "queued as …", Exchange "InternalId=…")."""
    for pattern in _QUEUE_ID:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return ""


# --- what to check ----------------------------------------------------------------------------------------------


def hint_for_dns(hop: "_Hop") -> str:
    if hop.connector.dns_routing_enabled:
        return (
            f"Check the MX records of {hop.next_hop} and that {hop.verification.server.name} can reach its DNS "
            "servers (the external ones when UseExternalDNSServersEnabled is $true)."
        )
    return (
        f"Check that the smart host names resolve from {hop.verification.server.name}'s DNS servers, or enter "
        "the smart hosts as IP addresses."
    )


def hint_for(reply: Reply, step_name: str, hop: "_Hop") -> str:
    """One line saying what to check for a failed step."""
    where = "the smart host" if not hop.connector.dns_routing_enabled else f"the mail servers of {hop.next_hop}"
    port = hop.connector.port
    server = hop.verification.server.name
    status = reply.enhanced_status
    if status == "4.4.315":
        return (
            f"Check that port {port} is open from {server} to {where} (firewalls, ISPs that block port "
            f"{port}) and that the remote server answers."
        )
    if status == "4.4.316":
        return (
            f"Nothing accepts connections on {hop.target.endpoint}: check the address of {where} and the "
            f"connector's Port ({port})."
        )
    if status == "4.4.318":
        return (
            "The remote server dropped the connection: check its logs and limits, and any firewall or proxy "
            "that inspects SMTP on the way."
        )
    if status == "4.7.320":
        return (
            f"The certificate of {where} fails TlsAuthLevel {hop.options.tls_auth_level}: install one from a "
            "trusted CA (valid, with the right name) on the remote server, or trust its CA in "
            "SENDCONN_TLS_CA_FILE."
        )
    if step_name == StepName.TLS:
        return (
            "RequireTLS is $true: the remote server must offer STARTTLS and negotiate TLS; check its TLS "
            "configuration, or turn RequireTLS off."
        )
    if step_name == StepName.AUTHENTICATION:
        return (
            "Check the smart host user name and password (Set-SendConnector -AuthenticationCredential) and "
            "that the smart host accepts AUTH PLAIN or LOGIN from this server (after STARTTLS with "
            "BasicAuthRequireTLS)."
        )
    if step_name == StepName.EHLO:
        return (
            f"The remote server refused the session: check that it accepts mail from {server}'s address and "
            f"the HELO name {hop.options.helo_name} (the connector's FQDN)."
        )
    if step_name == StepName.SEND:
        return (
            "The remote server refused the test message: check the recipient addresses and that the remote "
            f"server accepts mail for them from {server} (relay permission, sender restrictions)."
        )
    return f"Check that {where} is an SMTP server that accepts connections from {server} on port {port}."
