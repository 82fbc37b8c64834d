// The administrators' pages of the console: audit search and chain check (audit
// administrator), suppression rules (security administrator).
import { api } from "../api.js";
import { t } from "../i18n.js";

export function adminViews() {
  return {
    audit: { filters: { action: "", user: "", outcome: "" }, items: [], total: 0, verify: null },
    rules: [],
    assets: null, // null: the API has no asset routes (yet)
    assetFilter: "",

    async openAssets() {
      this.view = "assets";
      try {
        const page = await api.assets({});
        this.assets = page ? page.items : null;
      } catch (error) {
        this.failed(error);
      }
    },
    shownAssets() {
      const text = this.assetFilter.trim().toLowerCase();
      return (this.assets || []).filter((a) => !text || [a.cidr, a.name, a.site, a.department, a.owner]
        .some((v) => String(v || "").toLowerCase().includes(text)));
    },

    async openAudit() {
      this.view = "audit";
      try {
        const page = await api.audit({ ...this.audit.filters, limit: 100 });
        this.audit.items = page.items;
        this.audit.total = page.total;
      } catch (error) {
        this.failed(error);
      }
    },
    async verifyAudit() {
      try {
        this.audit.verify = await api.verifyAudit();
      } catch (error) {
        this.failed(error);
      }
    },
    async openRules() {
      this.view = "rules";
      try {
        const page = await api.suppressions();
        this.rules = page ? page.items : [];
        if (!page) this.say(t("rules.unavailable"));
      } catch (error) {
        this.failed(error);
      }
    },
    async expireRule(id) {
      try {
        await api.expireSuppression(id);
        await this.openRules();
      } catch (error) {
        this.failed(error);
      }
    },
    ruleMatch(rule) {
      return [rule.detector, rule.category && t(`cat.${rule.category}`), rule.source_cidr,
        rule.destination_cidr].filter(Boolean).join(" · ");
    },
  };
}
