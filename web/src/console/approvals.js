// Playbook runs waiting for a responder's approval: what each would do once approved (the
// steps after the wait, parameters as the run sees them now), approve or deny with a
// comment. Only responders decide, never the one who requested the run; the API enforces
// both (403 / 409), the page does not offer what would be refused.
import { api } from "../api.js";
import { actorName } from "../format.js";
import { t } from "../i18n.js";

const DETAIL_MAX = 100; // decisions read per page load (one request each)

function waitingStep(run) {
  const steps = run.steps || {};
  const id = Object.keys(steps).find((name) => steps[name]?.outcome === "waiting");
  return id ? { id, ...(steps[id].output || {}) } : null;
}

export function approvalsView() {
  return {
    approvals: [],
    approvalsTotal: 0,
    decisionComment: {},

    // A method, not a getter: the view's members are spread into the console component,
    // which would copy a getter's value once.
    canDecide() {
      return Boolean(this.me && this.me.role === "responder");
    },
    async openApprovals() {
      this.view = "approvals";
      try {
        const page = await api.runs({ status: "waiting", limit: 100 });
        const rows = page.items.map((doc) => {
          const run = doc.watchkeeper.run;
          return { id: run.run_id, run, doc, step: waitingStep(run), decision: null };
        });
        await Promise.all(rows.slice(0, DETAIL_MAX).map(async (row) => {
          const detail = await api.run(row.id).catch(() => null);
          row.decision = detail?.decisions.find((d) => d.step === row.step?.id) || null;
        }));
        this.approvals = rows;
        this.approvalsTotal = page.total;
      } catch (error) {
        this.failed(error);
      }
    },
    // Why this user cannot decide on this run (null: they can).
    decideBlock(row) {
      if (row.decision) return t("approvals.decided", { who: actorName(row.decision.by) });
      if (!this.canDecide()) return t("approvals.onlyResponder");
      const actor = this.me.kind === "user" ? this.me.name : `key:${this.me.name}`;
      if (row.run.requested_by === actor) return t("approvals.ownRequest");
      return null;
    },
    async decide(row, approve) {
      try {
        const comment = this.decisionComment[row.id] || "";
        row.decision = approve ? await api.approveRun(row.id, comment)
          : await api.denyRun(row.id, comment);
        this.say(t(approve ? "approvals.approvedNotice" : "approvals.deniedNotice",
          { playbook: row.run.playbook }));
      } catch (error) {
        this.failed(error);
      }
    },
    stepParams(step) {
      return Object.entries(step.with || {}).map(([name, value]) =>
        `${name}=${typeof value === "string" ? value : JSON.stringify(value)}`).join(" · ");
    },
  };
}
