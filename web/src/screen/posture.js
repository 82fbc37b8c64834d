// Reading the posture answer (GET /api/v1/posture, docs/api-posture.md) into what the panels
// draw, and the fallbacks used while that route is absent: the level from the open alerts'
// worst severity, collector health from /health's stages.
const LEVEL_ORDER = ["blue", "yellow", "orange", "red"];
const SEVERITY_LEVEL = { 4: "red", 3: "orange", 2: "yellow", 1: "blue" };

const list = (value) => (Array.isArray(value) ? value : []);
const levelWord = (value) => (LEVEL_ORDER.includes(value) ? value : null);

// Top-N entries as [{key, count}] whatever the owner named the count field.
function top(entries) {
  return list(entries).map((e) => ({
    key: e.key ?? e.ip ?? e.site ?? e.name ?? e.asset ?? "?",
    count: e.count ?? e.alerts ?? e.score ?? 0,
    label: e.name || e.label || null,
  }));
}

export function normalizePosture(raw) {
  if (!raw) return null;
  const overall = raw.overall || raw;
  const trends = raw.trends || raw.trend || {};
  return {
    level: levelWord(overall.level) || "blue",
    score: overall.score ?? null,
    trend: list(trends["24h"] || trends.day || trends).map((p) => [p.time || p.key || p.at, p.score ?? p.value ?? 0]),
    sites: list(raw.sites || raw.tiers).map((s) => ({
      id: s.site ?? s.id, name: s.name || s.site || s.id, parent: s.parent ?? null,
      tier: s.tier || null, level: levelWord(s.level) || "blue", score: s.score ?? null,
      open: s.open_alerts ?? s.alerts ?? null,
    })),
    topSources: top(raw.top_sources || raw.top?.sources),
    topTargets: top(raw.top_targets || raw.top?.targets),
    collectors: list(raw.collectors || raw.collector_health).map((c) => ({
      name: c.name || c.collector || c.id, rate: c.events_per_second ?? c.eps ?? null,
      lastSeen: c.last_seen || null, drops: c.kernel_drops ?? c.drops ?? 0,
      silent: Boolean(c.silent || c.stale || c.state === "silent"),
    })),
  };
}

// No posture route: the worst severity among the 24 h's open alerts sets the colour.
export function levelFromStats(stats) {
  let worst = 1;
  for (const bucket of stats?.by_severity || []) {
    if (bucket.count > 0) worst = Math.max(worst, Number(bucket.key) || 1);
  }
  return SEVERITY_LEVEL[worst];
}

// /health's pipeline stages as collector-health rows (a stalled stage is shown as silent).
export function collectorsFromHealth(health) {
  return list(health?.stages).map((s) => ({
    name: s.name, rate: null, lastSeen: s.last_progress || s.last_step || null,
    drops: 0, silent: s.state !== "ok", lag: s.lag,
  }));
}

// The tiered tile layout: region → cities → counties, from the posture's site entries.
export function siteTiers(sites, focus) {
  const byParent = new Map();
  for (const site of sites) {
    const key = site.parent || "";
    if (!byParent.has(key)) byParent.set(key, []);
    byParent.get(key).push(site);
  }
  const ids = new Set(sites.map((s) => s.id));
  const roots = focus && ids.has(focus)
    ? sites.filter((s) => s.id === focus)
    : sites.filter((s) => !s.parent || !ids.has(s.parent));
  return roots.map((root) => ({
    ...root,
    cities: (byParent.get(root.id) || []).map((city) => ({
      ...city, counties: byParent.get(city.id) || [],
    })),
  }));
}
