// The alert list (filters, keyboard triage, bulk) and the alert detail of the console.
import { api } from "../api.js";
import { alertState } from "../format.js";
import { t } from "../i18n.js";

export const VERDICTS = ["true_positive", "false_positive", "benign_positive", "duplicate", "other"];
export const STATUSES = ["new", "acknowledged", "investigating", "closed"];
export const CATEGORIES = [
  "scan", "brute_force", "dos", "beaconing", "dns_tunneling", "dga", "exfiltration",
  "lateral_movement", "ioc_match", "policy_violation", "anomaly", "ids",
];
const LEGACY_STATUS = { investigating: "in_progress", closed: "resolved" };
const FILTERS_KEY = "wk.savedFilters";

const emptyFilters = () => ({ severity: "", status: "", category: "", ip: "", q: "", since: "" });

export function alertsView() {
  return {
    VERDICTS,
    STATUSES,
    CATEGORIES,
    filters: emptyFilters(),
    savedFilters: JSON.parse(localStorage.getItem(FILTERS_KEY) || "[]"),
    alerts: [],
    total: 0,
    nextCursor: null,
    cursor: 0,
    selected: [],
    loading: false,
    detail: null,
    closing: null, // { ids, verdict, comment }
    commentText: "",

    async openAlerts(id) {
      this.view = "alerts";
      if (!this.alerts.length) await this.loadAlerts();
      if (id) await this.openDetail(id);
      else this.detail = null;
    },
    filterParams() {
      const f = this.filters;
      const params = { severity: f.severity, category: f.category, ip: f.ip, q: f.q, limit: 50 };
      if (f.since) params.since = new Date(Date.now() - Number(f.since) * 3600e3).toISOString();
      return params;
    },
    async loadAlerts(more = false) {
      this.loading = true;
      try {
        const params = this.filterParams();
        if (more) params.cursor = this.nextCursor;
        const page = await this.searchByStatus(params);
        this.alerts = more ? [...this.alerts, ...page.items] : page.items;
        this.total = page.total;
        this.nextCursor = page.next_cursor;
        if (!more) {
          this.cursor = 0;
          this.selected = [];
        }
      } catch (error) {
        this.failed(error);
      } finally {
        this.loading = false;
      }
    },
    async searchByStatus(params) {
      const status = this.filters.status;
      try {
        return await api.alerts({ ...params, status });
      } catch (error) {
        // An API from before the triage contract knows the old status words.
        if (error.status !== 422 || !LEGACY_STATUS[status]) throw error;
        return api.alerts({ ...params, status: LEGACY_STATUS[status] });
      }
    },
    saveFilter() {
      const name = prompt(t("filters.name"));
      if (!name) return;
      this.savedFilters = [...this.savedFilters.filter((s) => s.name !== name),
        { name, filters: { ...this.filters } }];
      localStorage.setItem(FILTERS_KEY, JSON.stringify(this.savedFilters));
    },
    applySaved(name) {
      const found = this.savedFilters.find((s) => s.name === name);
      if (found) {
        this.filters = { ...emptyFilters(), ...found.filters };
        this.loadAlerts();
      }
    },
    resetFilters() {
      this.filters = emptyFilters();
      this.loadAlerts();
    },
    current() {
      return this.alerts[this.cursor] || null;
    },
    state(alert) {
      return alertState(alert);
    },
    isSelected(alert) {
      return this.selected.includes(alert.event.id);
    },
    toggleSelect(alert) {
      const id = alert.event.id;
      this.selected = this.isSelected(alert)
        ? this.selected.filter((x) => x !== id) : [...this.selected, id];
    },
    move(step) {
      if (!this.alerts.length) return;
      this.cursor = Math.max(0, Math.min(this.alerts.length - 1, this.cursor + step));
      const row = document.querySelector(`[data-row="${this.cursor}"]`);
      if (row) row.scrollIntoView({ block: "nearest" });
    },
    targets() {
      return this.selected.length ? [...this.selected] : (this.current() ? [this.current().event.id] : []);
    },
    alertKey(event) {
      if (this.closing) {
        if (event.key === "Escape") this.closing = null;
        return;
      }
      const actions = {
        j: () => this.move(1), k: () => this.move(-1),
        x: () => this.current() && this.toggleSelect(this.current()),
        Enter: () => this.current() && this.showDetail(this.current()),
        Escape: () => this.hideDetail(),
      };
      if (this.canTriage) {
        actions.a = () => this.acknowledge(this.targets());
        actions.c = () => this.startClose(this.targets());
      }
      const action = actions[event.key];
      if (action) {
        event.preventDefault();
        action();
      }
    },
    async acknowledge(ids) {
      if (!ids.length) return;
      const done = await api.bulk(ids, { status: "acknowledged" }, (id) => api.acknowledge(id))
        .catch((error) => this.failed(error));
      this.say(t("triage.acknowledged", { count: done }));
      await this.refreshRows(ids);
    },
    startClose(ids) {
      if (ids.length) {
        this.closing = { ids, verdict: "true_positive", comment: "", suppress: false, days: 30 };
      }
      this.$nextTick(() => document.getElementById("close-verdict")?.focus());
    },
    canSuppress(verdict) {
      return ["false_positive", "benign_positive"].includes(verdict);
    },
    async confirmClose() {
      const { ids, verdict, comment, suppress, days } = this.closing;
      this.closing = null;
      try {
        if (suppress && this.canSuppress(verdict)) {
          // The rule closes the alert itself, and the stored open alerts like it.
          const made = await Promise.all(ids.map((id) =>
            api.suppressFromAlert(id, { verdict, reason: comment, days: Number(days) })));
          this.say(t("triage.suppressed", { count: made.length }));
        } else {
          const done = await api.bulk(ids, { status: "closed", verdict, comment },
            (id) => api.close(id, verdict, comment));
          this.say(t("triage.closed", { count: done }));
        }
      } catch (error) {
        this.failed(error);
      }
      await this.refreshRows(ids);
    },
    async refreshRows(ids) {
      const fresh = await Promise.all(ids.map((id) => api.alert(id).catch(() => null)));
      for (const alert of fresh.filter(Boolean)) {
        const index = this.alerts.findIndex((a) => a.event.id === alert.event.id);
        if (index >= 0) this.alerts[index] = alert;
        if (this.detail && this.detail.alert.event.id === alert.event.id) this.detail.alert = alert;
      }
      this.selected = [];
    },
    showDetail(alert) {
      location.hash = `#/alerts/${encodeURIComponent(alert.event.id)}`;
    },
    hideDetail() {
      if (this.detail) location.hash = "#/alerts";
    },
    async openDetail(id) {
      try {
        const [alert, evidence, history, comments] = await Promise.all([
          api.alert(id), api.evidence(id).catch(() => null), api.history(id), api.comments(id),
        ]);
        this.detail = {
          alert, evidence: evidence?.items || [], missing: evidence?.missing || [],
          history: history?.items || history || [], comments: comments?.items || comments || [],
          allEvidence: false,
        };
      } catch (error) {
        this.detail = null;
        this.failed(error);
      }
    },
    async submitComment() {
      const text = this.commentText.trim();
      if (!text || !this.detail) return;
      try {
        await api.addComment(this.detail.alert.event.id, text);
        this.commentText = "";
        await this.openDetail(this.detail.alert.event.id);
        this.say(t("detail.commented"));
      } catch (error) {
        this.failed(error);
      }
    },
  };
}
