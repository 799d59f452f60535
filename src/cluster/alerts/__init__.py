"""Alerts (issue 12): what raises them, what they carry, where they go — pure parts.

    decision = decide(state, run_id=..., status="failed", time_ms=..., repeat_s=3600)
    header = sign(secret, body, t=int(time.time()))

The outbox that keeps events until they are sent is the run store's
(``cluster.store``: ``alert_state``, ``alert_outbox``); sending them is
``cluster.alert_delivery``. This package does no I/O; any package may import it.

  _kinds      AlertKind, which statuses are failures
  _decision   the flapping rule (first failure, then once per repeat_s; recovered)
  _signature  the webhook's X-Scheduler-Signature
  _channels   Channel, AlertPolicy (a job's ``alerts``), their validation
  _event      AlertEvent (JSON body, summary, link), AlertSettings,
              unschedulable_event (the one call for "a job no worker may run")
"""

from ._channels import (CHANNEL_NAME_RE, DEFAULT_POLICY, MAX_CHANNELS_PER_JOB, AlertPolicy,
                        AlertSettingsError, Channel, check_channel_name, parse_channel,
                        parse_policy)
from ._decision import DEFAULT_REPEAT_S, AlertDecision, JobAlertState, decide
from ._event import EXCERPT_CHARS, AlertEvent, AlertSettings, excerpt, unschedulable_event
from ._kinds import FAILURE_KINDS, JOB_KINDS, AlertKind
from ._signature import HEADER, SignatureError, sign, verify

__all__ = ["CHANNEL_NAME_RE", "DEFAULT_POLICY", "DEFAULT_REPEAT_S", "EXCERPT_CHARS",
           "FAILURE_KINDS", "HEADER", "JOB_KINDS", "MAX_CHANNELS_PER_JOB", "AlertDecision",
           "AlertEvent", "AlertKind", "AlertPolicy", "AlertSettings", "AlertSettingsError",
           "Channel", "JobAlertState", "SignatureError", "check_channel_name", "decide",
           "excerpt", "parse_channel", "parse_policy", "sign", "unschedulable_event",
           "verify"]
