"""Send a plain-text mail through the configured SMTP relay (the duty officer by default)."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from pydantic import Field

from playbooks.actions.base import Action, ActionContext, ActionResult, Params


class EmailParams(Params):
    to: list[str] = Field(default_factory=list, description="default: duty_officer")
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field("", max_length=100_000)


class NotifyEmail(Action):
    name = "notify_email"
    Params = EmailParams
    idempotent = False      # a mail server does not dedupe: never resent after a crash

    def run(self, ctx: ActionContext, params: EmailParams) -> ActionResult:
        to = params.to or ctx.settings.duty_officer
        if not to:
            return ActionResult("failed", {}, "no recipient: set `to` or playbooks.duty_officer",
                                retry=False, message_zh="没有收件人：请设置 `to` 或 "
                                                        "playbooks.duty_officer")
        mail = EmailMessage()
        mail["From"] = ctx.settings.mail_from
        mail["To"] = ", ".join(to)
        mail["Subject"] = params.subject
        # Message-ID from the idempotency key: a copy that did go out twice is recognisable.
        mail["Message-ID"] = make_msgid(idstring=ctx.key[:32], domain="watchkeeper")
        mail["X-Watchkeeper-Run"] = ctx.run_id
        mail.set_content(params.body or params.subject)
        try:
            with smtplib.SMTP(ctx.settings.smtp_host, ctx.settings.smtp_port, timeout=10) as smtp:
                refused = smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            return ActionResult("failed", {}, f"mail not sent: {exc}",
                                message_zh=f"邮件未发出：{exc}")
        return ActionResult("ok", {"to": to, "refused": sorted(refused)})
