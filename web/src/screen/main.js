// The command centre's wall screen: one Alpine component, panels in screen/index.html.
// Logs in with a viewer API key (`/screen?key=wk_…`, kept in sessionStorage for the tab).
import Alpine from "alpinejs";
import { api, auth, canRead } from "../api.js";
import * as fmt from "../format.js";
import { otherLangHref, t } from "../i18n.js";
import { bars, resizeAll, sparkline } from "./charts.js";
import { keepLive } from "./live.js";
import { applyTick, siteTiers, warningsOf } from "./posture.js";
import { countNew, derive, loadPanels, subtreeIds } from "./panels.js";
import "./screen.css";

const VIEWS = ["overall", "attacks", "assets", "incidents", "collectors"];
const LEVEL_HEX = { red: "#ef4444", orange: "#f97316", yellow: "#facc15", blue: "#3b82f6" };
const SEVERITY_HEX = { 4: "#ef4444", 3: "#f97316", 2: "#facc15", 1: "#60a5fa" };
const TICKER_MAX = 30;

function rotationSeconds() {
  const asked = Number(new URLSearchParams(location.search).get("rotate"));
  return asked >= 5 ? asked : 20;
}

function takeKeyFromUrl() {
  const url = new URL(location.href);
  const key = url.searchParams.get("key");
  if (key) {
    auth.useKey(key);
    url.searchParams.delete("key"); // never leave the key in the address bar or history
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
}

function screenApp() {
  return {
    t, fmt, VIEWS, LEVEL_HEX,
    langHref: otherLangHref(),
    me: null, keyInput: "", authError: "",
    mode: "starting", connected: true, disconnectedSince: null,
    level: "blue", score: null, trend: [], perMinute: 0, total24: 0,
    severityRows: [], categoryRows: [], sites: [], focus: null,
    incidents: [], incidentsReadable: true, topSources: [], topTargets: [], collectors: [],
    warnings: [],
    ticker: [], view: 0, paused: false, rotateSeconds: rotationSeconds(), countdownLeft: 0,
    now: Date.now(), lastUpdate: null, loaded: [],

    async init() {
      takeKeyFromUrl();
      if (auth.hasCredentials()) await this.start();
      setInterval(() => this.tick(), 1000);
      window.addEventListener("resize", () => this.draw()); // font sizes follow the width
      window.addEventListener("keydown", (e) => e.key === " " && this.togglePause());
    },
    async start() {
      try {
        this.me = await api.me();
      } catch (error) {
        this.authError = error.status === 401 ? t("screen.badKey") : t("screen.unreachable");
        await auth.logout().catch(() => {});
        return;
      }
      this.countdownLeft = this.rotateSeconds;
      await this.refresh().catch(() => {});
      this.stopLive = keepLive(this);
    },
    async useKey() {
      this.authError = "";
      auth.useKey(this.keyInput.trim());
      this.keyInput = "";
      await this.start();
    },
    tick() {
      this.now = Date.now();
      if (!this.me || this.paused) return;
      this.countdownLeft -= 1;
      if (this.countdownLeft <= 0) this.show((this.view + 1) % VIEWS.length);
    },
    show(index) {
      this.view = index;
      this.countdownLeft = this.rotateSeconds;
      this.$nextTick(() => this.draw());
    },
    togglePause() {
      this.paused = !this.paused;
    },
    setConnected(connected) {
      if (connected) this.disconnectedSince = null;
      else this.disconnectedSince ||= new Date().toISOString();
      this.connected = connected;
    },
    async refresh() {
      const raw = {};
      try {
        const focus = this.focus;
        await loadPanels(focus, (name, value) => {
          if (focus !== this.focus) return; // another tile was clicked meanwhile
          raw[name] = value;
          if (!this.loaded.includes(name)) this.loaded = [...this.loaded, name];
          Object.assign(this, derive(raw));
          if (name === "recent") this.mergeTicker(value?.items || []);
          this.$nextTick(() => this.draw());
        }, focus ? subtreeIds(this.sites, focus) : [], canRead(this.me));
        if (this.mode !== "stream") this.setConnected(true);
        this.lastUpdate = new Date().toISOString();
      } catch (error) {
        // With the live feed, the feed's own connection says whether we are connected.
        if (this.mode !== "stream" && (!error.status || error.status >= 500)) {
          this.setConnected(false);
        }
        throw error;
      }
    },
    mergeTicker(recent) {
      // The freshest state of each alert wins (an analyst's change shows on the ticker too).
      const fresh = new Map(recent.slice(0, TICKER_MAX).map((a) => [a.event.id, a]));
      const merged = [...fresh.values(), ...this.ticker.filter((a) => !fresh.has(a.event.id))];
      merged.sort((a, b) => String(b["@timestamp"]).localeCompare(String(a["@timestamp"])));
      this.ticker = merged.slice(0, TICKER_MAX);
    },
    draw() {
      sparkline(document.getElementById("trend-chart"), this.trend, LEVEL_HEX[this.level]);
      sparkline(document.getElementById("rate-chart"), this.rateSeries || [], "#38bdf8");
      bars(document.getElementById("severity-chart"), this.severityRows,
        this.severityRows.map((r) => SEVERITY_HEX[r.key]));
      bars(document.getElementById("category-chart"), this.categoryRows);
      resizeAll(); // a chart first drawn while its view was hidden has no size yet
    },
    tiers() {
      return siteTiers(this.sites, this.focus);
    },
    // A site as people say it: its name from the posture's sites, "全部单位" for the root.
    siteName(id) {
      if (!id || id === "/") return t("site.root");
      return this.sites.find((s) => s.id === id)?.name || id;
    },
    focusOn(siteId) {
      // The tile's subtree is read afresh by every panel (the API's ?site=); the ticker keeps
      // only what belongs there until the feed brings more.
      const ids = subtreeIds(this.sites, siteId);
      this.focus = this.focus === siteId ? null : siteId;
      if (this.focus) this.ticker = this.ticker.filter((a) => ids.includes(a.labels?.site));
      this.refresh().catch(() => {});
    },
    inFocus(doc) {
      return !this.focus || subtreeIds(this.sites, this.focus).includes(doc?.labels?.site);
    },
    tickState(alert) {
      const { status } = fmt.alertState(alert);
      return status === "new" ? "" : t(`status.${status}`);
    },
    clock(incident) {
      const info = fmt.incidentInfo(incident);
      if (info.reported_at) return { text: t("incident.reported"), overdue: false };
      if (!info.report_due) return null;
      const left = new Date(info.report_due).getTime() - this.now;
      return { text: fmt.countdown(left), overdue: left < 0 };
    },
    onAlert(doc) {
      if (!doc?.event?.id || !this.inFocus(doc)) return;
      const others = this.ticker.filter((a) => a.event.id !== doc.event.id);
      const known = others.length < this.ticker.length;
      // A changed alert keeps its place; a new one goes first.
      this.ticker = known
        ? this.ticker.map((a) => (a.event.id === doc.event.id ? doc : a))
        : [doc, ...others].slice(0, TICKER_MAX);
      // A new alert counts at once (the "in the counts within 3 s"); the re-read
      // below replaces these numbers with the store's.
      if (!known) {
        Object.assign(this, countNew(this, doc));
        this.$nextTick(() => this.draw());
      }
      this.soon();
    },
    soon() {
      // A burst of live events: one re-read of the counts, shortly after the last of them.
      clearTimeout(this.soonTimer);
      this.soonTimer = setTimeout(() => this.refresh().catch(() => {}), 700);
    },
    onIncident(doc) {
      if (!doc?.event?.id || !this.inFocus(doc)) return;
      const others = this.incidents.filter((i) => i.event.id !== doc.event.id);
      const open = fmt.incidentInfo(doc).status !== "closed";
      this.incidents = open ? [doc, ...others] : others;
    },
    onPosture(tick) {
      if (!tick || !tick.level) return;
      // Focused on a tile: the headline is that site's, not the whole scope's.
      const own = this.focus ? (tick.sites || []).find((s) => s.site === this.focus) : tick;
      if (own?.level) {
        this.level = own.level;
        this.score = own.score ?? this.score;
      }
      this.sites = applyTick(this.sites, tick);
      // Detection health at every tick (a collector falling silent shows within one tick);
      // a focused screen keeps the warnings of its tile's subtree.
      if (Array.isArray(tick.warnings)) {
        const ids = this.focus ? subtreeIds(this.sites, this.focus) : null;
        this.warnings = warningsOf(tick).filter((w) => !ids || ids.includes(w.site));
      }
    },
  };
}

Alpine.data("screenApp", screenApp);
window.Alpine = Alpine;
Alpine.start();
