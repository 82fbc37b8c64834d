// Message catalogues: every label a user reads comes from i18n/<lang>.json (zh-CN default).
// `?lang=en` switches (and is remembered for the tab); keys missing in a catalogue show the key.
import en from "./i18n/en.json";
import zh from "./i18n/zh-CN.json";

const CATALOGUES = { "zh-CN": zh, en };

function pickLang() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked && CATALOGUES[asked]) {
    sessionStorage.setItem("wk.lang", asked);
    return asked;
  }
  const kept = sessionStorage.getItem("wk.lang");
  return kept && CATALOGUES[kept] ? kept : "zh-CN";
}

export const lang = pickLang();
const messages = CATALOGUES[lang];
document.documentElement.lang = lang;

export function t(key, vars) {
  let text = messages[key] ?? zh[key] ?? key;
  if (vars) {
    for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`{${name}}`, value);
  }
  return text;
}

// The URL of this page in the other language (the switch link).
export function otherLangHref() {
  const url = new URL(location.href);
  url.searchParams.set("lang", lang === "en" ? "zh-CN" : "en");
  url.searchParams.delete("key");
  return url.pathname + url.search + url.hash;
}
