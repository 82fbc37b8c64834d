"""What the header parser hands to the program parsers: one syslog message, decoded."""
from __future__ import annotations

from dataclasses import dataclass, field

FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
              "authpriv", "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1",
              "local2", "local3", "local4", "local5", "local6", "local7")
SEVERITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational",
              "debug")
DEFAULT_PRI = 13  # RFC 3164 §4.3.3: a relay gives a message without PRI user.notice


class SyslogError(ValueError):
    """Input that is not a syslog message we can trust; the text says which part and why."""


@dataclass
class SyslogMessage:
    """A parsed header plus the free text. Absent header fields are None (5424's NILVALUE)."""
    pri: int
    format: str                          # "rfc5424" | "rfc3164" | "bare" (no header after PRI)
    message: str                         # MSG (5424) / text after the tag (3164)
    content: str = ""                    # 3164: TAG + MSG as sent (CEF hides in here)
    pri_present: bool = True
    version: int | None = None           # 1 for RFC 5424
    timestamp_text: str | None = None    # the header timestamp exactly as sent
    timestamp: float | None = None       # epoch seconds, only when the header carried a zone
    local_time: str | None = None        # 3164 zone-less time, ISO without zone (year inferred)
    hostname: str | None = None
    app_name: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def facility(self) -> int:
        return self.pri >> 3

    @property
    def severity(self) -> int:
        return self.pri & 7

    @property
    def facility_name(self) -> str:
        return FACILITIES[self.facility] if self.facility < len(FACILITIES) else "unknown"

    @property
    def severity_name(self) -> str:
        return SEVERITIES[self.severity]
