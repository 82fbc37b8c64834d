// The analysts' console: login, alert list with filters and keyboard triage, alert detail,
// incidents. One Alpine component; the views are sections of console/index.html.
import Alpine from "alpinejs";
import { api, auth, canRead } from "../api.js";
import * as fmt from "../format.js";
import { otherLangHref, t } from "../i18n.js";
import { adminViews } from "./admin.js";
import { alertsView } from "./alerts.js";
import { approvalsView } from "./approvals.js";
import { incidentsView } from "./incidents.js";
import { reportsView } from "./reports.js";
import "./console.css";

const TRIAGE_ROLES = ["analyst", "responder"];

function consoleApp() {
  return {
    t,
    fmt,
    langHref: otherLangHref(),
    me: null,
    view: "login",
    login: { username: "", password: "", error: "", busy: false },
    notice: "",
    ...alertsView(),
    ...incidentsView(),
    ...adminViews(),
    ...approvalsView(),
    ...reportsView(),

    async init() {
      window.addEventListener("keydown", (event) => this.onKey(event));
      window.addEventListener("hashchange", () => this.route());
      if (auth.hasCredentials()) await this.loadMe();
      this.route();
    },
    get canTriage() {
      return Boolean(this.me && TRIAGE_ROLES.includes(this.me.role));
    },
    get canRead() {
      return canRead(this.me);
    },
    get canSetLevel() {
      return Boolean(this.me && this.me.role === "responder");
    },
    async loadMe() {
      try {
        this.me = await api.me();
      } catch {
        this.me = null;
        await auth.logout().catch(() => {});
      }
      if (this.canRead) this.loadSiteNames();
    },
    siteNames: {},
    async loadSiteNames() {
      // Lists show a site's name (区域政务云), not its id (dc-region); ids until it lands.
      const sites = await api.sites().catch(() => null);
      if (sites) this.siteNames = Object.fromEntries(sites.items.map((s) => [s.id, s.name]));
    },
    siteName(id) {
      if (!id || id === "/") return t("site.root");
      return this.siteNames[id] || id;
    },
    siteLabel(doc) {
      const id = fmt.site(doc);
      return id ? this.siteNames[id] || id : "/";
    },
    async submitLogin() {
      this.login.busy = true;
      this.login.error = "";
      try {
        await auth.login(this.login.username, this.login.password);
        this.login.password = "";
        await this.loadMe();
        this.route();
      } catch (error) {
        this.login.error = error.status === 429 ? t("login.locked") : t("login.failed");
      } finally {
        this.login.busy = false;
      }
    },
    async logout() {
      await auth.logout().catch(() => {});
      this.me = null;
      location.hash = "";
      this.view = "login";
    },
    route() {
      if (!this.me) {
        this.view = "login";
        return;
      }
      const [name, id] = location.hash.replace(/^#\/?/, "").split("/");
      if (this.me.role === "audit_admin") {
        this.openAudit();
        return;
      }
      if (!this.canRead) {
        this.view = "norole";
        return;
      }
      if (name === "rules" && this.me.role === "security_admin") this.openRules();
      else if (name === "assets") this.openAssets();
      else if (name === "approvals") this.openApprovals();
      else if (name === "reports") this.openReports();
      else if (name === "incidents") this.openIncidents(id ? decodeURIComponent(id) : null);
      else this.openAlerts(name === "alerts" && id ? decodeURIComponent(id) : null);
    },
    say(message) {
      this.notice = message;
      clearTimeout(this.noticeTimer);
      this.noticeTimer = setTimeout(() => (this.notice = ""), 4000);
    },
    failed(error) {
      this.say(t("error.request", { detail: error.message || String(error) }));
    },
    onKey(event) {
      const target = event.target;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (target && ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName)) {
        if (event.key === "Escape") target.blur();
        return;
      }
      if (this.view === "alerts") this.alertKey(event);
    },
  };
}

Alpine.data("consoleApp", consoleApp);
window.Alpine = Alpine;
Alpine.start();
