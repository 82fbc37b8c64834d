"""Delivery of a stored report: e-mail (SMTP, optional STARTTLS or implicit TLS) with the PDF
attached, and/or a webhook POST of its metadata. Each attempt is recorded on the report
(watchkeeper/store/reports.py: record_delivery); failed ones are retried by the scheduler."""
from __future__ import annotations

import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage

from reports.settings import SmtpSettings
from watchkeeper.store.reports import pdf_bytes, summary

TYPE_NAMES = {"daily": "网络安全态势日报", "weekly": "网络安全态势周报",
              "monthly": "网络安全等级保护合规月报", "incident": "网络安全事件报告"}


@dataclass
class Target:
    channel: str        # email | webhook
    address: str        # a mail address or a URL


def attempt_record(target: Target, ok: bool, error: str = "", attempt: int = 1,
                   now: float | None = None) -> dict:
    return {"channel": target.channel, "target": target.address, "ok": ok, "error": error[:500],
            "attempt": attempt, "at": time.time() if now is None else now}


def send_email(doc: dict, pdf: bytes, to: str, smtp: SmtpSettings) -> None:
    info = summary(doc)
    message = EmailMessage()
    name = TYPE_NAMES.get(info["type"], info["type"])
    message["Subject"] = f"[Watchkeeper] {name} {info['period']} {info['site'] or ''}".strip()
    message["From"] = smtp.sender
    message["To"] = to
    message.set_content(
        f"{name}\n报告编号：{info['id']}\n统计周期：{info['period']}\n"
        f"范围：{info['site'] or '全部'}\nPDF SHA-256：{info['sha256']}\n")
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=f"{info['id']}.pdf")
    context = ssl.create_default_context(cafile=smtp.ca_file)
    if smtp.tls == "ssl":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout_seconds,
                                  context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    with client:
        if smtp.tls == "starttls":
            client.starttls(context=context)
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        client.send_message(message)


def send_webhook(doc: dict, url: str, timeout: float = 30) -> None:
    body = json.dumps({"event": "report.generated", "report": summary(doc),
                       "download": f"/api/v1/reports/{summary(doc)['id']}/pdf"},
                      ensure_ascii=False).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:   # noqa: S310 - configured URL
        if response.status >= 300:
            raise OSError(f"webhook answered {response.status}")


def deliver(store, doc: dict, target: Target, smtp: SmtpSettings) -> str:
    """'' when delivered, else the reason it failed (never raises for a delivery problem)."""
    try:
        if target.channel == "email":
            send_email(doc, pdf_bytes(store, doc), target.address, smtp)
        else:
            send_webhook(doc, target.address, smtp.timeout_seconds)
    except (OSError, smtplib.SMTPException, urllib.error.URLError, ValueError, KeyError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""
