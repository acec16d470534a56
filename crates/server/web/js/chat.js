// The chat: the user's prompts, the assistant's answers rendered as Markdown while they
// stream, the session's history, and the list of this app's chat sessions. Each assistant
// turn carries the steps of the run that made it, folded under the answer: the current
// run's are open, earlier ones open on demand.
import { h, replace, timeEl } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { uploadUrl } from "./api.js";

export class Chat {
  /** onSteps(runId, steps): an earlier turn's steps were opened for the first time. */
  constructor(log, onSteps, appId) {
    this.log = log;
    this.onSteps = onSteps;
    this.appId = appId;
  }

  clear(note) {
    replace(this.log, note ? h("p", { class: "muted empty" }, note) : null);
  }

  /** Shows a session's stored messages. */
  history(messages) {
    this.clear(messages.length ? null : "No messages yet. Describe what to build.");
    for (const m of messages) {
      if (m.role === "user") this.user(m.content, m.attachments || []);
      else this.assistant(m.run_id, { folded: true }).finish(m.content, m.status);
    }
  }

  /** A prompt, with its attachments (`{upload_id, name, media_type}`) as thumbnails. */
  user(text, attachments = []) {
    this.log.querySelector(".empty")?.remove();
    const files = attachments.length
      ? h("ul", { class: "attached", "aria-label": "Attached files" }, ...attachments.map((a) => attachmentItem(this.appId, a)))
      : null;
    const el = h("article", { class: "msg user", "aria-label": "Your prompt" }, files, h("p", {}, text));
    this.log.append(el);
    this.scroll();
    return el;
  }

  /** The turn a run wrote, if the log shows it. */
  turnOf(runId) {
    return [...this.log.querySelectorAll("article.msg.assistant")].find((a) => a.dataset.run === runId)?.turn || null;
  }

  /**
   * An assistant bubble that can stream: append(delta), finish(text, status), and `steps`
   * (the run's timeline elements). A folded turn (history) asks for its steps when opened.
   */
  assistant(runId, { folded = false } = {}) {
    this.log.querySelector(".empty")?.remove();
    const body = h("div", { class: "md" });
    const steps = turnSteps(!folded);
    const el = h("article", { class: "msg assistant", "aria-label": "Assistant", dataset: { run: runId || "" } }, steps.details, body);
    if (folded && runId) {
      steps.details.addEventListener("toggle", () => {
        if (steps.details.open && !steps.loaded) {
          steps.loaded = true;
          this.onSteps && this.onSteps(runId, steps);
        }
      });
    }
    this.log.append(el);
    let text = "";
    let pending = false;
    const render = () => {
      pending = false;
      replace(body, renderMarkdown(text));
      this.scroll();
    };
    const turn = {
      el,
      append: (delta) => {
        text += delta;
        el.classList.add("streaming");
        if (!pending) {
          pending = true;
          requestAnimationFrame(render);
        }
      },
      /** The turn's whole text replaces the streamed one (they match; this heals gaps). */
      turn: (whole) => {
        if (whole && !text.endsWith(whole)) {
          text = text ? `${text}\n\n${whole}` : whole;
          render();
        }
      },
      finish: (final, status) => {
        el.classList.remove("streaming");
        if (final !== undefined && final !== null && final !== "") text = final;
        if (status && status !== "complete") el.dataset.status = status;
        render();
      },
      text: () => text,
      steps,
    };
    el.turn = turn;
    return turn;
  }

  note(text, kind = "info") {
    this.log.append(h("p", { class: `note ${kind}`, role: "status" }, text));
    this.scroll();
  }

  scroll() {
    this.log.scrollTop = this.log.scrollHeight;
  }
}

/** A turn's folded steps: a summary line with the stream's state, the run's header, the rows. */
function turnSteps(open) {
  const state = h("span", { class: "stream-state", "aria-live": "polite" });
  const header = h("div", { class: "run-info", "aria-live": "polite" });
  const list = h("ol", { class: "timeline", "aria-label": "Tool steps" });
  const details = h("details", { class: "turn-steps", open }, h("summary", {}, "Steps ", state), header, list);
  return { details, header, list, state, loaded: open };
}

/**
 * Marks one turn's steps as the current run's: the ids the page's tests and assistive
 * links use move to it, and every earlier turn's steps fold.
 */
export function makeCurrent(log, steps) {
  for (const id of ["timeline", "run-info", "stream-state", "run-status"]) {
    const old = log.querySelector(`#${id}`);
    if (old) old.removeAttribute("id");
  }
  for (const d of log.querySelectorAll("details.turn-steps[open]")) if (d !== steps.details) d.open = false;
  steps.list.id = "timeline";
  steps.header.id = "run-info";
  steps.state.id = "stream-state";
  steps.details.open = true;
  steps.loaded = true;
}

/** The app's chat sessions as a list of buttons; the current one is marked. */
export function renderSessions(el, sessions, currentId, onPick, onNew) {
  replace(
    el,
    h("button", { type: "button", class: "new-chat", onclick: onNew }, "New chat"),
    h(
      "ul",
      { class: "sessions", "aria-label": "Chat sessions" },
      sessions.map((s) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: s.id === currentId ? "session current" : "session",
              "aria-current": s.id === currentId ? "true" : null,
              onclick: () => onPick(s.id),
            },
            h("span", { class: "title" }, s.title || "Untitled chat"),
            " ",
            timeEl(s.updated_at),
          ),
        ),
      ),
    ),
  );
}

/** One attachment: an image's thumbnail, or a text file's name. */
export function attachmentItem(appId, a, ...extra) {
  const shown = a.media_type.startsWith("image/")
    ? h("img", { class: "thumb", src: uploadUrl(appId, a.upload_id), alt: a.name, title: a.name })
    : h("span", { class: "chip", title: a.media_type }, a.name);
  return h("li", { "data-upload": a.upload_id }, shown, ...extra);
}
