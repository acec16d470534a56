// Follows the app's own event stream (runs accepted and ended, queue changes, draft
// revisions), so every window on an app sees the same runs and queue live. Like the run
// follower it keeps the last seq, drops anything at or below it, and reconnects with
// `?after=<seq>` and a growing back-off; it never ends by itself.
import { agent } from "./api.js";
import { APP_EVENT_TYPES } from "./contract.js";

/** followApp(appId, onEvent) → {close()} */
export function followApp(appId, onEvent) {
  let last = 0;
  let source = null;
  let closed = false;
  let failures = 0;
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
    onEvent(event);
  };

  const open = () => {
    if (closed) return;
    const base = agent(appId, "events");
    source = new EventSource(last > 0 ? `${base}?after=${last}` : base, { withCredentials: true });
    for (const type of APP_EVENT_TYPES) source.addEventListener(type, handle);
    source.onerror = () => {
      if (closed) return;
      source.close();
      failures += 1;
      timer = setTimeout(open, Math.min(200 * 2 ** Math.min(failures - 1, 5), 4000));
    };
  };

  open();
  return {
    close: () => {
      closed = true;
      clearTimeout(timer);
      if (source) source.close();
    },
  };
}
