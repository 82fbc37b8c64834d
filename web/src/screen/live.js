// Keeping the screen current: the live feed when the API has one, else polling; the
// connection state behind the "disconnected since …" banner.
import { openStream } from "../api.js";

// No live feed: every panel re-read this often (`?poll=SECONDS`, at least 2, default 10).
const asked = Number(new URLSearchParams(location.search).get("poll"));
const POLL_MS = (asked >= 2 ? asked : 10) * 1000;
const REFRESH_MS = 60000; // with the live feed: aggregates re-read this often

// screen: { refresh(), onAlert(doc), onIncident(doc), onPosture(doc), setConnected(bool) }
export function keepLive(screen) {
  let timer = null;
  const every = (ms) => {
    clearInterval(timer);
    timer = setInterval(() => screen.refresh().catch(() => {}), ms);
  };
  const stream = openStream({
    onEvent(name, data) {
      if (name === "alert") screen.onAlert(data);
      else if (name === "incident") screen.onIncident(data);
      else if (name === "posture") screen.onPosture(data);
    },
    onState(connected) {
      const wasDown = screen.mode === "stream" && !screen.connected;
      screen.mode = "stream";
      screen.setConnected(connected);
      // Back after a gap: the aggregates may have moved while we were away (the feed itself
      // resumes from Last-Event-ID).
      if (connected && wasDown) screen.refresh().catch(() => {});
    },
    onUnavailable() {
      screen.mode = "poll";
      every(POLL_MS);
    },
  });
  every(REFRESH_MS);
  return () => {
    stream.close();
    clearInterval(timer);
  };
}
