// A task's event stream, read with fetch() because EventSource cannot send the bearer header.
// It parses Server-Sent Events itself and, when the connection drops before the task's final
// event, reconnects with Last-Event-ID so that no event is missed or repeated.

import { API } from "./api.js";
import { apiKey } from "./session.js";

const ENDINGS = new Set(["task.completed", "task.failed", "task.cancelled", "task.timed_out"]);
const MAX_DELAY_MS = 10000;

/** Parse SSE text; calls `dispatch` per complete event, answers the unparsed tail. */
export function parse(buffer, state, dispatch) {
  const lines = buffer.split(/\r\n|\r|\n/);
  const tail = lines.pop();
  for (const line of lines) {
    if (line === "") {
      if (state.data.length) dispatch({ id: state.id, type: state.type || "message", data: state.data.join("\n") });
      state.data = [];
      state.type = "";
      continue;
    }
    if (line.startsWith(":")) continue; // a heartbeat
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") state.id = value;
    else if (field === "event") state.type = value;
    else if (field === "data") state.data.push(value);
    else if (field === "retry" && /^\d+$/.test(value)) state.retry = Number(value);
  }
  return tail;
}

/**
 * Follow `path` (under /api/mesh) from after `lastEventId`. Calls onEvent({id, type, data})
 * per event, onState("live" | "reconnecting" | "ended" | "error", detail). Answers stop().
 */
export function follow(path, { lastEventId, onEvent, onState }) {
  let last = lastEventId;
  let stopped = false;
  let controller = null;
  let failures = 0;

  async function connect() {
    const state = { id: last === undefined ? "" : String(last), type: "", data: [], retry: 1000 };
    let ended = false;
    controller = new AbortController();
    const headers = { Accept: "text/event-stream", Authorization: `Bearer ${apiKey() || ""}` };
    if (last !== undefined && last !== null) headers["Last-Event-ID"] = String(last);
    try {
      const response = await fetch(API + path, { headers, signal: controller.signal, cache: "no-store" });
      if ([401, 403, 404].includes(response.status)) {
        onState("error", `the event stream answered ${response.status}`);
        return;
      }
      if (!response.ok || !response.body) throw new Error(`the event stream answered ${response.status}`);
      onState("live");
      failures = 0;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer = parse(buffer + decoder.decode(value, { stream: true }), state, (event) => {
          last = event.id;
          let data = null;
          try {
            data = JSON.parse(event.data);
          } catch {
            data = { raw: event.data };
          }
          if (ENDINGS.has(event.type)) ended = true;
          onEvent({ id: Number(event.id), type: event.type, data });
        });
      }
    } catch (error) {
      if (stopped) return;
      failures += 1;
    }
    if (stopped) return;
    if (ended) {
      onState("ended");
      return;
    }
    // The stream closed before the task's final event: come back after the server's hint,
    // backing off while it keeps failing.
    const delay = Math.min(MAX_DELAY_MS, state.retry * 2 ** Math.min(failures, 4));
    onState("reconnecting", delay);
    setTimeout(() => { if (!stopped) connect(); }, delay);
  }

  connect();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
