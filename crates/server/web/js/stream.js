// Follows a run's SSE stream (the session cookie authenticates EventSource). It keeps the
// last seq it handled, drops anything at or below it, and after a drop reconnects by
// itself with `?after=<seq>` and a growing back-off, so nothing is missed or doubled.
import { api } from "./api.js";
import { EVENT_TYPES, TERMINAL_EVENTS } from "./contract.js";

/**
 * follow(run, {after, onEvent, onEnd, onState, onError}) → {close(), lastSeq(), reconnects()}
 * onState("live" | "reconnecting" | "closed"); onEnd(terminalEvent); onError(ApiError).
 */
export function follow(run, handlers) {
  let last = handlers.after || 0;
  let source = null;
  let closed = false;
  let failures = 0;
  let reconnects = 0;
  let timer = null;

  const handle = (message) => {
    if (closed) return;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event.seq <= last) return;
    last = event.seq;
    failures = 0;
    handlers.onEvent(event);
    if (TERMINAL_EVENTS.has(event.event)) {
      stop();
      handlers.onEnd && handlers.onEnd(event);
    }
  };

  const open = () => {
    if (closed) return;
    const url = last > 0 ? `${run.stream_url}?after=${last}` : run.stream_url;
    source = new EventSource(url, { withCredentials: true });
    for (const type of EVENT_TYPES) source.addEventListener(type, handle);
    source.onopen = () => handlers.onState && handlers.onState("live");
    source.onerror = () => reconnect();
  };

  const reconnect = async () => {
    if (closed) return;
    if (source) source.close();
    source = null;
    failures += 1;
    reconnects += 1;
    handlers.onState && handlers.onState("reconnecting");
    if (failures >= 3) {
      // Repeated failures: ask the API why (expired session, deleted run…) and say so.
      try {
        await api("GET", `/admin/apps/${run.app_id}/coding-agent/runs/${run.run_id}`);
      } catch (err) {
        stop();
        handlers.onError && handlers.onError(err);
        return;
      }
    }
    const wait = Math.min(200 * 2 ** Math.min(failures - 1, 5), 4000);
    timer = setTimeout(open, wait);
  };

  const stop = () => {
    closed = true;
    clearTimeout(timer);
    if (source) source.close();
    source = null;
    handlers.onState && handlers.onState("closed");
  };

  open();
  return {
    close: stop,
    lastSeq: () => last,
    reconnects: () => reconnects,
  };
}
