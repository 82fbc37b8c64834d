// The live feed (GET /api/v1/stream, Server-Sent Events) read with fetch, not EventSource:
// EventSource cannot send the Authorization header. Reconnects by itself with Last-Event-ID,
// so nothing is missed across an API restart or a network drop.
import { auth, BASE } from "./api.js";

const SILENCE_MS = 45000; // no byte (not even a heartbeat) for this long: the link is dead
const RETRY_MS = [1000, 2000, 5000, 10000, 15000];

// handlers: { onEvent(name, data), onState(connected: bool), onUnavailable() }
export function openStream(handlers, path = "/stream") {
  let lastId = null;
  let stopped = false;
  let attempt = 0;
  let controller = null;

  async function connectOnce() {
    controller = new AbortController();
    let watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
    const headers = { ...auth.header(), Accept: "text/event-stream" };
    if (lastId) headers["Last-Event-ID"] = lastId;
    const response = await fetch(BASE + path, { headers, signal: controller.signal });
    if (response.status === 404 || response.status === 405) return "unavailable";
    if (!response.ok || !response.body) throw new Error(`stream: HTTP ${response.status}`);
    attempt = 0;
    handlers.onState(true);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
    clearTimeout(watchdog);
    return "closed";
  }

  function dispatch(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue; // heartbeat comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
      else if (field === "id") lastId = value;
    }
    if (!data.length) return;
    let parsed;
    try {
      parsed = JSON.parse(data.join("\n"));
    } catch {
      parsed = data.join("\n");
    }
    handlers.onEvent(name, parsed);
  }

  async function loop() {
    while (!stopped) {
      let outcome;
      try {
        outcome = await connectOnce();
      } catch {
        outcome = "failed";
      }
      if (stopped) return;
      if (outcome === "unavailable") {
        handlers.onUnavailable();
        return;
      }
      handlers.onState(false);
      const wait = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
      attempt += 1;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  loop();
  return {
    close() {
      stopped = true;
      if (controller) controller.abort();
    },
  };
}
