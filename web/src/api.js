// Every call to the Watchkeeper API goes through this module: credentials, JSON requests,
// the live feed. Routes that change (triage, incidents, posture, stream) are swapped here only.
const BASE = "/api/v1";
const KEYS = { access: "wk.access", refresh: "wk.refresh", apiKey: "wk.key" };

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

// sessionStorage: credentials end with the browser tab, never persist on a shared machine.
const saved = (name) => sessionStorage.getItem(KEYS[name]);
const save = (name, value) =>
  value ? sessionStorage.setItem(KEYS[name], value) : sessionStorage.removeItem(KEYS[name]);

export const auth = {
  hasCredentials: () => Boolean(saved("access") || saved("apiKey")),
  useKey(key) {
    save("apiKey", key);
  },
  async login(username, password) {
    const body = new URLSearchParams({ username, password });
    const pair = await send("POST", "/auth/token", { form: body, anonymous: true });
    save("access", pair.access_token);
    save("refresh", pair.refresh_token);
  },
  async logout() {
    const refresh = saved("refresh");
    try {
      if (refresh) await send("POST", "/auth/logout", { body: { refresh_token: refresh } });
    } finally {
      for (const name of Object.keys(KEYS)) save(name, null);
    }
  },
  header() {
    const token = saved("access") || saved("apiKey");
    return token ? { Authorization: `Bearer ${token}` } : {};
  },
};

let refreshing = null;
async function refreshOnce() {
  const token = saved("refresh");
  if (!token) return false;
  // Refresh tokens are single use: concurrent 401s share one exchange.
  refreshing ||= send("POST", "/auth/token", {
    form: new URLSearchParams({ grant_type: "refresh_token", refresh_token: token }),
    anonymous: true,
  })
    .then((pair) => {
      save("access", pair.access_token);
      save("refresh", pair.refresh_token);
      return true;
    })
    .catch(() => false)
    .finally(() => (refreshing = null));
  return refreshing;
}

function query(params = {}) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null && one !== "") search.append(name, one);
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// A file the API answers with (a report's PDF): its bytes, with the same credentials.
async function fetchBlob(path, retried = false) {
  const response = await fetch(BASE + path, { headers: auth.header() });
  if (response.status === 401 && !retried && (await refreshOnce())) return fetchBlob(path, true);
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  return response.blob();
}

async function send(method, path, { params, body, form, anonymous, retried } = {}) {
  const headers = anonymous ? {} : auth.header();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(BASE + path + query(params), {
    method,
    headers,
    body: form || (body === undefined ? undefined : JSON.stringify(body)),
  });
  if (response.status === 401 && !anonymous && !retried && (await refreshOnce())) {
    return send(method, path, { params, body, form, retried: true });
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// The status words of the triage contract; legacy values from before it are mapped on read.
const LEGACY_CLOSE = { false_positive: "false_positive" };

export const api = {
  me: () => send("GET", "/auth/me"),
  alerts: (filters) => send("GET", "/alerts", { params: filters }),
  alert: (id) => send("GET", `/alerts/${encodeURIComponent(id)}`),
  evidence: (id) => send("GET", `/alerts/${encodeURIComponent(id)}/evidence`),
  history: (id) => optional(send("GET", `/alerts/${encodeURIComponent(id)}/history`)),
  comments: (id) => optional(send("GET", `/alerts/${encodeURIComponent(id)}/comments`)),
  addComment: (id, text) =>
    send("POST", `/alerts/${encodeURIComponent(id)}/comments`, { body: { text } }).catch(
      (error) => {
        // Before the comments route: the comment travels with a no-op update (audited).
        if (error.status !== 404 && error.status !== 405) throw error;
        return send("PATCH", `/alerts/${encodeURIComponent(id)}`, { body: { comment: text } });
      },
    ),
  updateAlert: (id, changes) =>
    send("PATCH", `/alerts/${encodeURIComponent(id)}`, { body: changes }),
  acknowledge: (id) => api.updateAlert(id, { status: "acknowledged" }),
  async close(id, verdict, comment = "") {
    try {
      return await api.updateAlert(id, { status: "closed", verdict, comment });
    } catch (error) {
      if (error.status !== 422) throw error;
      // An API from before the triage contract: close by the old status words.
      const status = LEGACY_CLOSE[verdict] || "resolved";
      return api.updateAlert(id, { status, comment });
    }
  },
  // Many alerts, one change: POST /alerts/bulk (triage), else one request per alert (each
  // change is audited per alert either way). `each(id)` is the per-alert fallback.
  async bulk(ids, change, each) {
    try {
      const result = await send("POST", "/alerts/bulk", { body: { ids, change } });
      return result.changed;
    } catch (error) {
      if (![404, 405].includes(error.status)) throw error;
    }
    const results = await Promise.allSettled(ids.map(each));
    return results.filter((r) => r.status === "fulfilled").length;
  },
  // Close as a false/benign positive and silence alerts like it (alerting's suppression rule).
  suppressFromAlert: (id, { verdict, reason, days, match = ["detector", "source"] }) =>
    send("POST", `/alerts/${encodeURIComponent(id)}/suppress`, {
      body: { verdict, reason, match,
        expires_at: new Date(Date.now() + days * 86400e3).toISOString() },
    }),
  incidents: (filters) => send("GET", "/incidents", { params: filters }),
  incident: (id) => send("GET", `/incidents/${encodeURIComponent(id)}`),
  incidentAlerts: (id) => send("GET", `/incidents/${encodeURIComponent(id)}/alerts`),
  incidentTimeline: (id) =>
    optional(send("GET", `/incidents/${encodeURIComponent(id)}/timeline`)),
  recordReport: (id, reportedTo, reportedAt) =>
    send("POST", `/incidents/${encodeURIComponent(id)}/report`, {
      body: { reported_to: reportedTo, reported_at: reportedAt },
    }),
  setIncidentLevel: (id, level, reason) =>
    send("PUT", `/incidents/${encodeURIComponent(id)}/level`, { body: { level, reason } }),
  assets: (params) => optional(send("GET", "/assets", { params })),
  sites: () => optional(send("GET", "/sites")),
  reports: (params) => optional(send("GET", "/reports", { params })),
  createReport: (body) => send("POST", "/reports", { body }),
  reportPdf: (id) => fetchBlob(`/reports/${encodeURIComponent(id)}/pdf`),
  audit: (filters) => send("GET", "/audit", { params: filters }),
  verifyAudit: () => send("GET", "/audit/verify"),
  suppressions: () => optional(send("GET", "/suppressions")),
  expireSuppression: (id) => send("POST", `/suppressions/${encodeURIComponent(id)}/expire`),
  alertStats: (params) => send("GET", "/stats/alerts", { params }),
  posture: (params) => optional(send("GET", "/posture", { params })),
  runs: (params) => send("GET", "/playbooks/runs", { params }),
  run: (id) => send("GET", `/playbooks/runs/${encodeURIComponent(id)}`),
  approveRun: (id, comment) =>
    send("POST", `/playbooks/runs/${encodeURIComponent(id)}/approve`, { body: { comment } }),
  denyRun: (id, comment) =>
    send("POST", `/playbooks/runs/${encodeURIComponent(id)}/deny`, { body: { comment } }),
};

// The roles that may search alerts and incidents (api/security.py READ_ROLES): the pages ask
// for those routes only for them, instead of collecting a 403 on every refresh.
export const READ_ROLES = ["analyst", "responder", "security_admin"];
export const canRead = (me) => Boolean(me && READ_ROLES.includes(me.role));

// A route that does not exist (yet) or that this role may not read answers null, not an error.
function optional(promise) {
  return promise.catch((error) => {
    if ([403, 404, 405].includes(error.status)) return null;
    throw error;
  });
}

export { openStream } from "./stream.js";
export { BASE };
