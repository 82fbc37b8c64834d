// One read of every panel's data: alert statistics (24 h and the last hour), posture,
// collector health, open incidents and recent alerts (when the key's role may read them).
import { api } from "../api.js";
import { severityLabel } from "../format.js";
import { t } from "../i18n.js";
import { collectorsFromHealth, levelFromStats, normalizePosture } from "./posture.js";

const HOUR = 3600e3;
const OPEN_INCIDENT = ["new", "acknowledged", "investigating", "contained", "in_progress"];
const LEVEL_RANK = { I: 0, II: 1, III: 2, IV: 3 };

const ago = (ms) => new Date(Date.now() - ms).toISOString();

async function health() {
  const response = await fetch("/health").catch(() => null);
  return response ? response.json().catch(() => null) : null;
}

// Routes this role may not read (403) or that do not exist yet (404) give null, not an error.
const readable = (promise) => promise.catch((e) => ([403, 404].includes(e.status) ? null : Promise.reject(e)));

function rows(buckets, label) {
  return (buckets || []).filter((b) => b.count > 0)
    .map((b) => ({ key: b.key, label: label(b.key), count: b.count }));
}

function sortIncidents(items) {
  const open = items.filter((i) => OPEN_INCIDENT.includes(i.watchkeeper?.incident?.status || "new"));
  const due = (i) => i.watchkeeper?.incident?.report_due || "9999";
  return open.sort((a, b) =>
    (LEVEL_RANK[a.watchkeeper?.incident?.level] ?? 9) - (LEVEL_RANK[b.watchkeeper?.incident?.level] ?? 9)
    || due(a).localeCompare(due(b)));
}

// Histogram buckets (epoch seconds, only the non-empty ones) as a gap-free series up to now.
export function dense(buckets, interval, count) {
  const seen = new Map(buckets.map((b) => [Number(b.key), b.count]));
  const last = Math.floor(Date.now() / 1000 / interval) * interval;
  const series = [];
  for (let key = last - (count - 1) * interval; key <= last; key += interval) {
    series.push([key, seen.get(key) || 0]);
  }
  return series;
}

function topBy(alerts, field) {
  const counts = new Map();
  for (const alert of alerts) {
    const key = field(alert);
    if (key) counts.set(key, (counts.get(key) || 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([key, count]) => ({ key, count }));
}

// Every read starts at once and is shown as it lands (`apply(name, value)`): the cheap ones
// (the last hour, health) do not wait for the 24 h aggregates. `focus`: a clicked map tile,
// every panel then reads that site's subtree (`siteIds`: its ids, for the alert search whose
// `site` filter is exact). `searches`: whether the role may search incidents and alerts (a
// viewer may not: those panels then come from the posture, with no request to be refused).
export function loadPanels(focus, apply, siteIds = [], searches = true) {
  const site = focus || undefined;
  const hour = api.alertStats({ since: ago(HOUR), interval: 60, site });
  // Everything else after the last hour's counts (the first thing drawn): a store that
  // answers one query at a time (SQLite) would otherwise keep them queued behind the
  // posture's ten aggregations and the 24 h one (the slow first renders of bench/web.py).
  const then = (read) => hour.catch(() => null).then(read);
  const reads = {
    hour,
    day: then(() => api.alertStats({ since: ago(24 * HOUR), interval: 3600, site })),
    posture: then(() => api.posture({ site })),
    health: health(),
    incidents: searches ? then(() => readable(api.incidents({ limit: 100, site })))
      : Promise.resolve(null),
    recent: searches ? then(() => readable(api.alerts({ since: ago(24 * HOUR), limit: 200, site: site ? siteIds : undefined })))
      : Promise.resolve(null),
  };
  return Promise.all(Object.entries(reads).map(([name, read]) => read.then((v) => apply(name, v))));
}

// The ids of `focus` and every site below it, from the posture's site entries.
export function subtreeIds(sites, focus) {
  const ids = [focus];
  for (let i = 0; i < ids.length; i += 1) {
    for (const s of sites) if (s.parent === ids[i] && !ids.includes(s.id)) ids.push(s.id);
  }
  return ids;
}

// The 24 h counts with one more alert in them (a new alert from the live feed), until the
// next read of the store; a re-raised alert (raised before the last 24 h) is not counted.
export function countNew(screen, alert) {
  const raised = Date.parse(alert["@timestamp"]);
  if (!(raised > Date.now() - 24 * HOUR)) return {};
  const bump = (rows, key, label) => {
    const found = rows.some((r) => r.key === key);
    return found ? rows.map((r) => (r.key === key ? { ...r, count: r.count + 1 } : r))
      : [...rows, { key, label: label(key), count: 1 }];
  };
  const severity = alert.event?.severity;
  const category = alert.watchkeeper?.alert?.category;
  return {
    total24: (screen.total24 || 0) + 1,
    severityRows: severity ? bump(screen.severityRows, severity, severityLabel)
      .sort((a, b) => b.key - a.key) : screen.severityRows,
    categoryRows: category ? bump(screen.categoryRows, category,
      (key) => `${t(`cat.${key}`)} · ${t(`gbt.${key}`)}`) : screen.categoryRows,
  };
}

// What the panels show, from the reads landed so far (`raw`): only the fields they settle.
export function derive(raw) {
  const out = {};
  const posture = normalizePosture(raw.posture);
  const recent = raw.recent?.items || [];
  if (raw.hour) {
    const minutes = dense(raw.hour.histogram.buckets, 60, 60);
    out.perMinute = minutes[minutes.length - 2][1]; // the last full minute
    out.rateSeries = minutes;
  }
  if (raw.day) {
    out.total24 = raw.day.total;
    out.severityRows = rows(raw.day.by_severity, severityLabel).sort((a, b) => b.key - a.key);
    out.categoryRows = rows(raw.day.by_category, (key) => `${t(`cat.${key}`)} · ${t(`gbt.${key}`)}`)
      .sort((a, b) => b.count - a.count).slice(0, 8);
  }
  if (posture || raw.day) {
    out.level = posture?.level || levelFromStats(raw.day);
    out.score = posture?.score ?? null;
    out.trend = posture?.trend?.length ? posture.trend : dense(raw.day?.histogram.buckets || [], 3600, 24);
  }
  if (posture?.sites?.length) out.sites = posture.sites;
  if (posture) out.warnings = posture.warnings;
  const collectors = posture?.collectors?.length ? posture.collectors : collectorsFromHealth(raw.health);
  if (collectors.length) out.collectors = collectors;
  if (posture?.topSources?.length || raw.recent) {
    out.topSources = posture?.topSources?.length ? posture.topSources : topBy(recent, (a) => a.source?.ip);
    out.topTargets = posture?.topTargets?.length ? posture.topTargets : topBy(recent, (a) => a.destination?.ip);
  }
  // The board: the incident search when this role may make it, else the posture's open
  // incidents; with neither (an API without them) it keeps what the live feed brought.
  const incidents = raw.incidents?.items || posture?.openIncidents;
  if ("incidents" in raw || incidents) {
    out.incidentsReadable = Boolean(incidents);
    if (incidents) out.incidents = sortIncidents(incidents);
  }
  return out;
}
