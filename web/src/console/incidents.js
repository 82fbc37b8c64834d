// Incidents in the console: the list (level, warning colour, reporting clock) and one incident
// with its alerts, timeline, "record report" and (for responders) the emergency level.
import { api } from "../api.js";
import { countdown, fromBeijingInput, incidentInfo, LEVEL_COLOURS } from "../format.js";
import { t } from "../i18n.js";

export const LEVELS = ["I", "II", "III", "IV"];

// The reporting clock of an incident: { text, overdue, reported } or null (no clock).
export function reportClock(incident, now = Date.now()) {
  const info = incidentInfo(incident);
  if (info.reported_at) return { text: t("incident.reported"), overdue: false, reported: true };
  if (!info.report_due) return null;
  const left = new Date(info.report_due).getTime() - now;
  return { text: countdown(left), overdue: left < 0 || Boolean(info.overdue), reported: false };
}

export function incidentsView() {
  return {
    LEVELS,
    incidents: [],
    incidentTotal: 0,
    incident: null,
    report: { to: "", at: "" },
    now: Date.now(),

    async openIncidents(id) {
      this.view = "incidents";
      clearInterval(this.clockTimer);
      this.clockTimer = setInterval(() => (this.now = Date.now()), 1000);
      try {
        const page = await api.incidents({ limit: 100 });
        this.incidents = page.items;
        this.incidentTotal = page.total;
        this.incident = id ? await this.loadIncident(id) : null;
      } catch (error) {
        this.failed(error);
      }
    },
    async loadIncident(id) {
      const [doc, alerts, timeline] = await Promise.all([
        api.incident(id), api.incidentAlerts(id).catch(() => []), api.incidentTimeline(id),
      ]);
      return { doc, alerts, timeline: timeline?.items || timeline || [] };
    },
    info(incident) {
      return incidentInfo(incident);
    },
    colour(incident) {
      const info = incidentInfo(incident);
      return info.warning_colour || LEVEL_COLOURS[info.level] || "blue";
    },
    clock(incident) {
      return reportClock(incident, this.now);
    },
    async submitReport() {
      const id = this.incident.doc.event.id;
      const at = fromBeijingInput(this.report.at) || new Date().toISOString();
      try {
        await api.recordReport(id, this.report.to, at);
        this.report = { to: "", at: "" };
        this.say(t("incident.reportRecorded"));
        await this.openIncidents(id);
      } catch (error) {
        this.failed(error);
      }
    },
    async changeLevel(level) {
      const id = this.incident.doc.event.id;
      const reason = prompt(t("incident.levelReason"));
      if (!reason) return;
      try {
        await api.setIncidentLevel(id, level, reason);
        await this.openIncidents(id);
      } catch (error) {
        this.failed(error);
      }
    },
  };
}
