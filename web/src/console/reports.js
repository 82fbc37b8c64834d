// Compliance reports in the console: the stored ones of the caller's subtree (scheduled or
// made on demand) with their PDFs, and a form to make one now (POST /reports, audited).
import { api } from "../api.js";
import { t } from "../i18n.js";

const EXAMPLES = { daily: "2026-11-05", weekly: "2026-W45", monthly: "2026-11" };
const SHAPES = { daily: /^\d{4}-\d{2}-\d{2}$/, weekly: /^\d{4}-W\d{2}$/, monthly: /^\d{4}-\d{2}$/ };

export function reportsView() {
  return {
    reports: null, // null: this role may not read reports
    reportForm: { type: "monthly", period: "", site: "", incident_id: "", busy: false, error: "" },

    async openReports() {
      this.view = "reports";
      try {
        const page = await api.reports({ limit: 100 });
        this.reports = page ? page.items : null;
      } catch (error) {
        this.failed(error);
      }
    },
    periodExample() {
      return EXAMPLES[this.reportForm.type] || "";
    },
    async makeReport() {
      const form = this.reportForm;
      form.error = "";
      const shape = SHAPES[form.type];
      if (shape && !shape.test(form.period.trim())) {
        form.error = t("reports.periodFormat", { example: EXAMPLES[form.type] });
        return;
      }
      form.busy = true;
      const body = { type: form.type, site: form.site || undefined };
      if (form.type === "incident") body.incident_id = form.incident_id.trim();
      else body.period = form.period.trim();
      try {
        const made = await api.createReport(body);
        this.say(t("reports.made", { id: made.id }));
        await this.openReports();
      } catch (error) {
        // The API's problem details say what is wrong (a bad period, an unknown incident).
        const why = error.problem?.errors?.[0]?.msg || error.message;
        form.error = t("reports.refused", { detail: why.replace(/^body: /, "") });
      } finally {
        form.busy = false;
      }
    },
    async downloadReport(report) {
      try {
        const blob = await api.reportPdf(report.id);
        const link = document.createElement("a");
        link.href = URL.createObjectURL(blob);
        link.download = `${report.id}.pdf`;
        link.click();
        setTimeout(() => URL.revokeObjectURL(link.href), 60000);
      } catch (error) {
        this.failed(error);
      }
    },
  };
}
