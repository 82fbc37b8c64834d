// How times, numbers and alert fields are shown: Beijing time, grouped numbers, and the
// triage contract's status words (legacy values read from older alerts are mapped).
import { lang, t } from "./i18n.js";

const clock = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

export function beijing(iso, withDate = true) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "—";
  const p = Object.fromEntries(clock.formatToParts(date).map((x) => [x.type, x.value]));
  const time = `${p.hour}:${p.minute}:${p.second}`;
  return withDate ? `${p.year}-${p.month}-${p.day} ${time}` : time;
}

// A datetime-local input's value ("2026-12-01T10:30", seconds optional) read as Beijing time,
// the zone every time on these pages is shown in, whatever the browser's own zone is (a
// server-room PC set to UTC would otherwise record a report clock eight hours off).
export function fromBeijingInput(value) {
  if (!value) return null;
  const date = new Date(`${value.length === 16 ? `${value}:00` : value}+08:00`);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

const grouped = new Intl.NumberFormat("en-US");
export const num = (value) => (value === null || value === undefined ? "—" : grouped.format(value));

export const SEVERITIES = { 1: "low", 2: "medium", 3: "high", 4: "critical" };
export const severityName = (level) => SEVERITIES[level] || "low";
export const severityLabel = (level) => t(`severity.${severityName(level)}`);

const LEGACY = {
  in_progress: ["investigating", null],
  resolved: ["closed", "true_positive"],
  false_positive: ["closed", "false_positive"],
  suppressed: ["closed", "benign_positive"],
};

export function alertState(alert) {
  const info = alert?.watchkeeper?.alert || {};
  const [status, verdict] = LEGACY[info.status] || [info.status || "new", info.verdict || null];
  return { status, verdict: info.verdict || verdict };
}

export const alertInfo = (alert) => alert?.watchkeeper?.alert || {};
export const incidentInfo = (incident) => incident?.watchkeeper?.incident || {};
export const site = (doc) => doc?.labels?.site || "";

// What an alert says, in the page's language: detectors write zh-CN beside the English ECS
// `message` / `rule.name` (alerts from elsewhere, e.g. Suricata's signatures, have only those).
const zhOr = (zh, other) => (lang === "zh-CN" && zh) || other || "";
export const alertMessage = (alert) => zhOr(alertInfo(alert).message_zh, alert?.message);
export const ruleName = (alert) => zhOr(alertInfo(alert).rule_name_zh, alert?.rule?.name);

// An incident's title from its entity and its categories in the page's language (the stored
// `message` is "<entity>: <category ids>").
export function incidentTitle(incident) {
  const info = incidentInfo(incident);
  const cats = info.categories || [];
  if (!info.entity || !cats.length) return incident?.message || info.entity || "";
  return `${info.entity}${t("incident.titleSep")}${cats.map((c) => t(`cat.${c}`)).join(" → ")}`;
}

// "1 h 05 min" / "05:12" for the reporting clock; negative = overdue.
export function countdown(ms) {
  const sign = ms < 0 ? "-" : "";
  const total = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(total / 3600);
  const m = String(Math.floor((total % 3600) / 60)).padStart(2, "0");
  const s = String(total % 60).padStart(2, "0");
  return `${sign}${h}:${m}:${s}`;
}

export const LEVEL_COLOURS = { I: "red", II: "orange", III: "yellow", IV: "blue" };

// What a playbook run is about (its subject: the alert or incident that started it).
export const subjectText = (doc) =>
  (doc?.watchkeeper?.incident ? incidentTitle(doc) : alertMessage(doc));

// One line of an alert's change history (GET /alerts/{id}/history) as people read it: the
// action and field names from the catalogues, statuses and verdicts in words, times in Beijing
// time; bookkeeping fields (updated_at, the comment's id…) left out.
const HIDDEN_FIELDS = ["updated_at", "acknowledged_at", "closed_at", "comment", "reopened",
  "level_set_by", "level_set_at", "level_reason", "graded_at", "people_rev"];
const known = (key, raw) => (t(key) === key ? raw : t(key));  // no catalogue entry: the raw name
function historyValue(field, value) {
  if (value === null || value === undefined || value === "") return "—";
  if (Array.isArray(value)) return value.length ? value.join("、") : "—";
  if (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)) return beijing(value);
  if (field === "status") return t(`status.${(LEGACY[value] || [value])[0]}`);
  if (field === "verdict") return t(`verdict.${value}`);
  if (field === "level") return known(`level.${value}`, String(value));
  return String(value);
}
// Who did it, as people read it: a playbook (its steps; `rule:` its trigger, which started a
// run), the correlator, the system, a detector (the actor of an incident's alert entries);
// people by their names.
export function actorName(actor, kind) {
  if (!actor) return "";
  const cut = actor.indexOf(":");
  const [prefix, name] = cut < 0 ? [actor, ""] : [actor.slice(0, cut), actor.slice(cut + 1)];
  if (prefix === "playbook" && name) return t("actor.playbook", { name });
  if (prefix === "rule" && name) return t("actor.rule", { name });
  if (prefix === "system" && name) return t("actor.system", { name });
  if (actor === "correlator") return t("actor.correlator");
  if (kind === "alert") return t("actor.detector", { name: actor });
  return actor;
}

export function historyLine(entry) {
  const action = entry.action || entry.event?.action || "";
  return [beijing(entry["@timestamp"] || entry.at), entry.user?.name || actorName(entry.actor),
    known(`history.${action}`, action), changesText(entry.changes),
    entry.message ? `“${entry.message}”` : ""].filter(Boolean).join(" ");
}

// {field: {from, to}} as "状态：待处理 → 已确认，…" (only entries of that shape).
function changesText(changes) {
  return Object.entries(changes || {})
    .filter(([field, c]) => !HIDDEN_FIELDS.includes(field) && c && typeof c === "object" && "to" in c)
    .map(([field, c]) => `${known(`field.${field}`, field)}：${historyValue(field, c.from)} → ${historyValue(field, c.to)}`)
    .join("，");
}

// One line of an incident's timeline: our own summaries in the page's language (summary_zh);
// audited actions (level, report, link…) named from the catalogues, with the reason given.
export function timelineLine(entry) {
  const ours = lang === "zh-CN" && entry.summary_zh;
  const who = actorName(entry.actor, entry.kind);
  if (ours) return [beijing(entry.at), who, ours].filter(Boolean).join(" ");
  const reason = entry.summary || entry.message || "";
  return [beijing(entry["@timestamp"] || entry.at), who,
    known(`timeline.${entry.kind}`, ""), changesText(entry.changes), reason ? `“${reason}”` : ""]
    .filter(Boolean).join(" ");
}
