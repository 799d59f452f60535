"""Sending alerts (issue 12): the deliverer that empties the run store's outbox.

    service = AlertService(EtcdAlertSource(etcd, keyspace), config.db, owner=worker_id)
    # a supervisor child: service.run() / service.request_stop()

  _senders    a webhook (httpx, signed) or an email (smtplib in a thread, STARTTLS)
  _source     channels, settings and job policies from etcd (cached briefly)
  _deliverer  claim with a lease (in order per job and channel), resolve, send, mark;
              backoff; statistics
  _service    the deliverer as a child with its own store connection and HTTP client
  _metrics    its prometheus collector (sent, failed, pending per channel)
"""

from ._deliverer import Deliverer, DeliveryStatistics
from ._metrics import AlertMetrics
from ._senders import DeliveryFailed, Senders, webhook_body
from ._service import AlertService
from ._source import AlertSource, EtcdAlertSource, channels_wanted

__all__ = ["AlertMetrics", "AlertService", "AlertSource", "Deliverer", "DeliveryFailed",
           "DeliveryStatistics", "EtcdAlertSource", "Senders", "channels_wanted",
           "webhook_body"]
