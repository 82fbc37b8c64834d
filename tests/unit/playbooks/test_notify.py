"""notify_email against a real SMTP server (aiosmtpd); notify_webhook's failures."""
from __future__ import annotations

import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from playbooks.actions import REGISTRY, ActionContext
from playbooks.settings import PlaybookSettings


class Inbox(Message):
    def __init__(self):
        super().__init__()
        self.mails = []

    def handle_message(self, message):
        self.mails.append(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def _ctx(store, **settings):
    return ActionContext(store=store, settings=PlaybookSettings(**settings),
                         run={"playbook": "mailer"}, run_id="run-1", step_id="mail",
                         target="203.0.113.7", key="0123456789abcdef0123456789abcdef",
                         now=1_767_225_600.0)


def test_mail_reaches_the_duty_officer(store, smtp):
    inbox, port = smtp
    action = REGISTRY["notify_email"]
    ctx = _ctx(store, smtp_port=port, duty_officer=["duty@example.gov.cn"])
    result = action.run(ctx, action.Params(subject="【紧急】暴力破解成功", body="来源 203.0.113.7"))
    assert result.outcome == "ok", result.message
    [mail] = inbox.mails
    from email.header import decode_header, make_header
    assert mail["To"] == "duty@example.gov.cn"
    assert str(make_header(decode_header(mail["Subject"]))) == "【紧急】暴力破解成功"
    assert mail["X-Watchkeeper-Run"] == "run-1"
    assert "0123456789abcdef" in mail["Message-ID"]
    assert "203.0.113.7" in mail.get_payload(decode=True).decode()


def test_mail_without_recipient_or_server_fails_cleanly(store):
    action = REGISTRY["notify_email"]
    assert action.run(_ctx(store), action.Params(subject="x")).outcome == "failed"
    result = action.run(_ctx(store, smtp_port=_free_port(), duty_officer=["a@b.c"]),
                        action.Params(subject="x"))
    assert result.outcome == "failed" and "not sent" in result.message


def test_webhook_errors_are_failures_not_crashes(store, receiver):
    action = REGISTRY["notify_webhook"]
    receiver.statuses = [500]
    result = action.run(_ctx(store), action.Params(url=f"{receiver.url}/x"))
    assert result.outcome == "failed" and result.output["status"] == 500
    result = action.run(_ctx(store), action.Params(url=f"http://127.0.0.1:{_free_port()}/x"))
    assert result.outcome == "failed" and "unreachable" in result.message
    ok = action.run(_ctx(store), action.Params(url=f"{receiver.url}/y", message="好"))
    assert ok.outcome == "ok" and receiver.posts[-1]["key"] == "0123456789abcdef0123456789abcdef"
    assert receiver.posts[-1]["body"]["message"] == "好"
