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

export async function loadPanels(focus) {
  const site = focus || undefined;
  const [day, hour, rawPosture, status, incidents, recent] = await Promise.all([
    api.alertStats({ since: ago(24 * HOUR), interval: 3600, site }),
    api.alertStats({ since: ago(HOUR), interval: 60, site }),
    api.posture({ site }),
    health(),
    readable(api.incidents({ limit: 100 })),
    readable(api.alerts({ since: ago(24 * HOUR), limit: 200 })),
  ]);
  const posture = normalizePosture(rawPosture);
  const minutes = dense(hour.histogram.buckets, 60, 60);
  const recentAlerts = recent?.items || [];
  return {
    total24: day.total,
    // The last full minute (the current one is still filling).
    perMinute: minutes[minutes.length - 2][1],
    rateSeries: minutes,
    severityRows: rows(day.by_severity, severityLabel).sort((a, b) => b.key - a.key),
    categoryRows: rows(day.by_category, (key) => `${t(`cat.${key}`)} · ${t(`gbt.${key}`)}`)
      .sort((a, b) => b.count - a.count).slice(0, 8),
    level: posture?.level || levelFromStats(day),
    score: posture?.score ?? null,
    trend: posture?.trend?.length ? posture.trend : dense(day.histogram.buckets, 3600, 24),
    sites: posture?.sites?.length ? posture.sites : [],
    collectors: posture?.collectors?.length ? posture.collectors : collectorsFromHealth(status),
    topSources: posture?.topSources?.length ? posture.topSources : topBy(recentAlerts, (a) => a.source?.ip),
    topTargets: posture?.topTargets?.length ? posture.topTargets
      : topBy(recentAlerts, (a) => a.destination?.ip),
    incidentsReadable: incidents !== null,
    // Unreadable for this role: the board keeps what the live feed brought.
    ...(incidents ? { incidents: sortIncidents(incidents.items) } : {}),
    recent: recentAlerts.slice(0, 30),
  };
}
