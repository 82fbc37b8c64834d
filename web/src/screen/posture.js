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

// The answer's shape: docs/api-posture.md (trend_24h.points, sites with parent and tier,
// top.sources/targets, collectors with observer/collector).
export function normalizePosture(raw) {
  if (!raw) return null;
  return {
    level: levelWord(raw.level) || "blue",
    score: raw.score ?? null,
    trend: list(raw.trend_24h?.points).map((p) => [p.start, p.score ?? 0]),
    sites: list(raw.sites).map(site),
    topSources: top(raw.top?.sources),
    topTargets: top(raw.top?.targets),
    warnings: warningsOf(raw),
    // The open incidents (any role that may read the posture; a viewer may not search them).
    openIncidents: Array.isArray(raw.open_incidents) ? raw.open_incidents : null,
    collectors: list(raw.collectors).map((c) => ({
      name: [c.collector, c.observer].filter(Boolean).join(" · ") || "?",
      rate: c.events_per_second ?? null, lastSeen: c.last_seen || null,
      drops: (c.kernel_drops ?? 0) + (c.dropped ?? 0), silent: Boolean(c.silent),
    })),
  };
}

// Detection health: each warning's text comes from the catalogues (the answer's `message` is
// zh-CN only); kind, collector and observer fill it. Posture answers and feed ticks alike.
export function warningsOf(raw) {
  return list(raw?.warnings).filter((w) => w && w.kind).map((w) => ({
    kind: w.kind, collector: w.collector || "?", observer: w.observer || "?", site: w.site ?? null,
  }));
}

function site(s) {
  return {
    id: s.site ?? s.id, name: s.name || s.site || s.id, parent: s.parent ?? null,
    tier: s.tier || null, level: levelWord(s.level) || "blue", score: s.score ?? null,
    open: s.open_alerts ?? null,
  };
}

// A posture tick of the live feed: levels and scores for the sites already drawn (the tick
// carries no names or parents; those come from GET /posture).
export function applyTick(sites, tick) {
  const fresh = new Map(list(tick?.sites).map((s) => [s.site, site(s)]));
  return sites.map((s) => (fresh.has(s.id)
    ? { ...s, level: fresh.get(s.id).level, score: fresh.get(s.id).score, open: fresh.get(s.id).open }
    : s));
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
