// The chat: the user's prompts, the assistant's answers rendered as Markdown while they
// stream, the session's history, and the list of this app's chat sessions.
import { h, replace, timeEl } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

export class Chat {
  constructor(log) {
    this.log = log;
  }

  clear(note) {
    replace(this.log, note ? h("p", { class: "muted empty" }, note) : null);
  }

  /** Shows a session's stored messages. */
  history(messages) {
    this.clear(messages.length ? null : "No messages yet. Describe what to build.");
    for (const m of messages) {
      if (m.role === "user") this.user(m.content);
      else this.assistant(m.run_id).finish(m.content, m.status);
    }
  }

  user(text) {
    this.log.querySelector(".empty")?.remove();
    const el = h("article", { class: "msg user", "aria-label": "Your prompt" }, h("p", {}, text));
    this.log.append(el);
    this.scroll();
    return el;
  }

  /** An assistant bubble that can stream: append(delta), finish(text, status). */
  assistant(runId) {
    this.log.querySelector(".empty")?.remove();
    const body = h("div", { class: "md" });
    const el = h("article", { class: "msg assistant", "aria-label": "Assistant", dataset: { run: runId || "" } }, body);
    this.log.append(el);
    let text = "";
    let pending = false;
    const render = () => {
      pending = false;
      replace(body, renderMarkdown(text));
      this.scroll();
    };
    return {
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
    };
  }

  note(text, kind = "info") {
    this.log.append(h("p", { class: `note ${kind}`, role: "status" }, text));
    this.scroll();
  }

  scroll() {
    this.log.scrollTop = this.log.scrollHeight;
  }
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
