// The builder view of one app: chat, task timeline, prompt queue, Stop, model picker,
// capabilities, checkpoints, files and preview. It owns the run lifecycle: start, follow,
// end, then start the next queued prompt; on load it reattaches to an active run.
import { api, agent, TERMINAL, uploadFile } from "./api.js";
import { attachmentItem, Chat, makeCurrent, renderSessions } from "./chat.js";
import { h, replace } from "./dom.js";
import { Checkpoints } from "./checkpoints.js";
import { DraftFiles } from "./files.js";
import { Preview } from "./preview.js";
import { capabilitiesSummary, modelPicker } from "./models.js";
import { showError } from "./notices.js";
import { Publisher } from "./publish.js";
import { PromptQueue } from "./queue.js";
import { follow } from "./stream.js";
import { Timeline } from "./timeline.js";
import { layout, tabs } from "./layout.js";

export class Builder {
  constructor(main, app) {
    this.app = app;
    this.session = null;
    this.run = null;
    this.follower = null;
    this.starting = false;
    this.reconnects = 0;
    this.ui = layout(main, app);
    tabs(this.ui.tabs);
    this.chat = new Chat(this.ui.chat, (runId, steps) => this.loadSteps(runId, steps), app.id);
    this.attached = [];
    this.timeline = null;
    this.replayers = new Set();
    this.queue = new PromptQueue(app.id, this.ui.queue, () => this.controls());
    this.files = new DraftFiles(this.ui.tree, this.ui.viewer, app.id);
    this.preview = new Preview(this.ui.preview, app);
    this.checkpoints = new Checkpoints(this.ui.checkpoints, app.id, (msg) => this.changed(msg), () => !this.run);
    this.publisher = new Publisher(this.ui.publish, app.id);
    this.ui.composer.addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
    this.ui.prompt.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
    this.ui.stop.addEventListener("click", () => this.stop());
    // Files: picked, pasted into the prompt, or dropped on the composer.
    this.ui.attach.addEventListener("change", () => {
      this.addFiles([...this.ui.attach.files]);
      this.ui.attach.value = "";
    });
    this.ui.prompt.addEventListener("paste", (e) => {
      const files = [...((e.clipboardData && e.clipboardData.files) || [])];
      if (files.length) {
        e.preventDefault();
        this.addFiles(files);
      }
    });
    this.ui.composer.addEventListener("dragover", (e) => e.preventDefault());
    this.ui.composer.addEventListener("drop", (e) => {
      const files = [...((e.dataTransfer && e.dataTransfer.files) || [])];
      if (files.length) {
        e.preventDefault();
        this.addFiles(files);
      }
    });
    // Read-only diagnostics (the UI tests read them): where the stream is, how often it reconnected.
    window.draftsmith = {
      lastSeq: () => (this.follower ? this.follower.lastSeq() : null),
      reconnects: () => this.reconnects + (this.follower ? this.follower.reconnects() : 0),
    };
  }

  async load() {
    const id = this.app.id;
    const [models, caps, runs] = await Promise.all([
      api("GET", agent(id, "models")).catch((e) => showError(e, "Models")),
      api("GET", agent(id, "capabilities")).catch((e) => showError(e, "Capabilities")),
      api("GET", agent(id, "runs?limit=10")).catch((e) => showError(e, "Runs")),
    ]);
    if (models) modelPicker(this.ui.model, models);
    if (caps) capabilitiesSummary(this.ui.caps, caps);
    const active = runs && runs.runs.find((r) => !TERMINAL.has(r.status));
    const latest = runs && runs.runs[0];
    if (active) {
      this.session = active.chat_session_id;
      await this.loadSession(active.chat_session_id, false);
      this.attach(active);
    } else {
      if (latest) {
        this.session = latest.chat_session_id;
        await this.loadSession(latest.chat_session_id, false);
        this.replay(latest);
      } else {
        this.chat.clear("No messages yet. Describe what to build.");
      }
      this.pump();
    }
    await this.refreshSessions();
    this.files.refresh();
    this.preview.refresh();
    this.checkpoints.refresh();
    this.publisher.refresh();
    this.controls();
  }

  async refreshSessions() {
    try {
      const list = await api("GET", agent(this.app.id, "chat-sessions"));
      renderSessions(this.ui.sessions, list.sessions, this.session, (sid) => this.pickSession(sid), () => this.newSession());
    } catch (err) {
      showError(err, "Chat sessions");
    }
  }

  async loadSession(sid, refreshList = true) {
    try {
      const detail = await api("GET", agent(this.app.id, `chat-sessions/${sid}`));
      this.chat.history(detail.messages);
    } catch (err) {
      showError(err, "Chat history");
    }
    if (refreshList) await this.refreshSessions();
  }

  async pickSession(sid) {
    if (this.run) return showError({ code: "CODING_AGENT_RUN_ACTIVE", message: "a run is active; switch chats when it ends" });
    this.session = sid;
    await this.loadSession(sid);
    this.ui.prompt.focus();
  }

  newSession() {
    if (this.run) return showError({ code: "CODING_AGENT_RUN_ACTIVE", message: "a run is active; start a new chat when it ends" });
    this.session = null;
    this.chat.clear("New chat. Describe what to build.");
    this.refreshSessions();
    this.ui.prompt.focus();
  }

  /** Uploads each file and shows it in the composer until the prompt is sent. */
  async addFiles(files) {
    for (const file of files) {
      try {
        const up = await uploadFile(this.app.id, file);
        this.attached.push({ upload_id: up.id, name: up.name, media_type: up.media_type });
      } catch (err) {
        showError(err, `Attaching ${file.name || "a file"}`);
      }
    }
    this.renderAttached();
  }

  renderAttached() {
    const list = this.ui.attached;
    list.hidden = this.attached.length === 0;
    replace(list, ...this.attached.map((a) => {
      const remove = h("button", { type: "button", class: "remove", "aria-label": `Remove ${a.name}` }, "×");
      remove.addEventListener("click", () => {
        this.attached = this.attached.filter((x) => x !== a);
        this.renderAttached();
      });
      return attachmentItem(this.app.id, a, remove);
    }));
  }

  send() {
    const text = this.ui.prompt.value.trim();
    if (!text) return;
    const attachments = this.attached;
    if (attachments.length && (this.run || this.starting || this.queue.length)) {
      return showError({ code: "VALIDATION_FAILED", message: "a prompt with attachments cannot wait in the queue; send it when the run ends" });
    }
    this.ui.prompt.value = "";
    this.attached = [];
    this.renderAttached();
    const item = { text, model: this.ui.model.value || "auto", attachments };
    if (this.run || this.starting || this.queue.length) {
      this.queue.push(item.text, item.model);
      this.pump();
    } else {
      this.start(item);
    }
  }

  async start(item) {
    this.starting = true;
    this.controls();
    const body = { input: item.text, model_id: item.model || "auto" };
    if (this.session) body.chat_session_id = this.session;
    const attachments = item.attachments || [];
    if (attachments.length) body.attachments = attachments.map((a) => a.upload_id);
    try {
      const run = await api("POST", agent(this.app.id, "runs"), body);
      this.starting = false;
      const fresh = this.session !== run.chat_session_id;
      this.session = run.chat_session_id;
      this.chat.user(item.text, attachments);
      this.attach(run);
      if (fresh) this.refreshSessions();
    } catch (err) {
      this.starting = false;
      if (err.code === "CODING_AGENT_RUN_ACTIVE") {
        // Someone else's run (another tab): wait for it in the queue, and follow it.
        this.queue.unshift({ id: `q${Date.now().toString(36)}`, ...item });
        if (err.details.run_id && !this.run) {
          api("GET", agent(this.app.id, `runs/${err.details.run_id}`)).then((r) => this.attach(r), (e) => showError(e));
        }
      } else if (err.status === 401) {
        // Signed out meanwhile: the prompt waits in the queue until the next sign-in.
        this.queue.unshift({ id: `q${Date.now().toString(36)}`, ...item });
      } else {
        showError(err, "Starting the run");
        if (!this.ui.prompt.value) this.ui.prompt.value = item.text;
        if (attachments.length && !this.attached.length) {
          this.attached = attachments;
          this.renderAttached();
        }
        this.pump();
      }
    }
    this.controls();
  }

  attach(run) {
    this.run = run;
    this.stopping = false;
    this.assistant = this.chat.assistant(run.run_id);
    this.timeline = this.current(run, this.assistant.steps);
    this.messageId = null;
    this.follower = follow(run, {
      after: 0,
      onEvent: (ev) => this.onEvent(ev),
      onEnd: (ev) => this.ended(run, ev),
      onState: (s) => this.streamState(s),
      onError: (err) => {
        showError(err, "Following the run");
        this.ended(run, null);
      },
    });
    this.controls();
  }

  streamState(state) {
    const el = this.assistant.steps.state;
    el.dataset.state = state;
    el.textContent = { live: "Live", reconnecting: "Reconnecting…", closed: "" }[state];
  }

  /** Leaving the view: stop following, and let the next builder run the queue. */
  dispose() {
    this.disposed = true;
    if (this.follower) this.follower.close();
    for (const r of this.replayers) r.close();
  }

  /** The run's steps become the current ones (open, under its turn), in a fresh timeline. */
  current(run, steps) {
    makeCurrent(this.ui.chat, steps);
    const timeline = new Timeline(steps.list, steps.header);
    timeline.reset(run);
    return timeline;
  }

  /** Shows the last run's steps under its turn (its log replays; the stream closes by itself). */
  replay(run) {
    let turn = this.chat.turnOf(run.run_id);
    if (!turn) {
      turn = this.chat.assistant(run.run_id, { folded: true });
      turn.finish("", run.status);
    }
    this.timeline = this.current(run, turn.steps);
    this.replaySteps(run, this.timeline, "Loading the last run");
  }

  /** An earlier turn's steps, read from its run's log when first opened. */
  async loadSteps(runId, steps) {
    try {
      const run = await api("GET", agent(this.app.id, `runs/${runId}`));
      const timeline = new Timeline(steps.list, steps.header);
      timeline.reset(run);
      this.replaySteps(run, timeline, "Loading a run's steps");
    } catch (err) {
      showError(err, "Loading a run's steps");
    }
  }

  replaySteps(run, timeline, what) {
    const replayer = follow(run, {
      after: 0,
      onEvent: (ev) => timeline.onEvent(ev),
      onEnd: () => this.replayers.delete(replayer),
      onError: (err) => showError(err, what),
    });
    this.replayers.add(replayer);
  }

  onEvent(ev) {
    const p = ev.payload || {};
    if (ev.event === "assistant.delta") {
      if (this.messageId && p.message_id !== this.messageId && this.assistant.text()) this.assistant.append("\n\n");
      this.messageId = p.message_id;
      this.assistant.append(p.delta);
    } else if (ev.event === "assistant.message") {
      this.assistant.turn(p.text);
    } else if (ev.event === "run.started") {
      this.timeline.status(this.run, "running");
    } else if (ev.event === "draft.synced") {
      this.files.refresh();
    }
    this.timeline.onEvent(ev);
  }

  async stop() {
    const run = this.run;
    if (!run || this.stopping) return;
    this.stopping = true;
    this.follower && this.follower.close();
    this.timeline.status(run, "cancelling");
    this.controls();
    try {
      await api("POST", agent(this.app.id, `runs/${run.run_id}/cancel`));
    } catch (err) {
      showError(err, "Stop");
    }
    // The stream is no longer read: poll until the run is terminal, then go on.
    const deadline = Date.now() + 30000;
    let current = run;
    while (Date.now() < deadline) {
      try {
        current = await api("GET", agent(this.app.id, `runs/${run.run_id}`));
        if (TERMINAL.has(current.status)) break;
      } catch (err) {
        showError(err, "Stop");
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    this.ended(run, { event: `run.${current.status}`, payload: { error: current.error } });
  }

  ended(run, ev) {
    if (this.run !== run || this.disposed) return;
    const status = ev ? ev.event.replace("run.", "") : "failed";
    this.timeline.status(run, status);
    this.timeline.settle(status);
    this.assistant.finish(undefined, status === "completed" ? "complete" : status);
    if (status === "failed" && ev && ev.payload && ev.payload.error) {
      this.chat.note(`Run failed — ${ev.payload.error.code}: ${ev.payload.error.message}`, "error");
    } else if (status === "cancelled") {
      this.chat.note("Run stopped.", "info");
    } else if (status === "paused") {
      this.chat.note(`Run paused (${(ev.payload && ev.payload.reason) || "step limit"}). Send a prompt to continue.`, "info");
    }
    this.run = null;
    if (this.follower) this.reconnects += this.follower.reconnects();
    this.follower = null;
    this.stopping = false;
    this.controls();
    this.changed();
    this.refreshSessions();
    this.pump();
  }

  /** After anything that changed the draft. */
  changed(message) {
    if (message) this.chat.note(message, "info");
    this.files.refresh();
    this.preview.refresh();
    this.checkpoints.refresh();
  }

  pump() {
    if (this.disposed || this.run || this.starting || !this.queue.length) return;
    this.start(this.queue.shift());
  }

  controls() {
    const busy = Boolean(this.run) || this.starting;
    this.ui.stop.disabled = !this.run || this.stopping;
    this.ui.send.textContent = busy ? "Queue" : "Send";
    document.body.dataset.run = this.run ? "active" : "idle";
  }
}

