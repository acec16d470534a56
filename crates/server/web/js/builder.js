// The builder view of one app: chat, task timeline, prompt queue, Stop, model picker,
// capabilities, checkpoints, files and preview. It sends prompts (a run, or the server's
// queue while one is active), steers the running turn, and follows the app stream: any run
// the app accepts — from this window, another one, or the queue — is followed here.
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
import { followApp } from "./appstream.js";
import { Timeline } from "./timeline.js";
import { UsagePanel } from "./usage.js";
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
    // Runs this page has shown (followed live, replayed, or in the loaded history).
    this.followed = new Set();
    this.queue = new PromptQueue(app.id, this.ui.queue);
    // Chat messages already shown, so a replayed `user.message` is not shown twice.
    this.shown = new Set();
    this.files = new DraftFiles(this.ui.tree, this.ui.viewer, app.id);
    this.preview = new Preview(this.ui.preview, app);
    this.checkpoints = new Checkpoints(this.ui.checkpoints, app.id, (msg) => this.changed(msg), () => !this.run);
    this.publisher = new Publisher(this.ui.publish, app.id);
    this.usage = new UsagePanel(this.ui.usage, app.id);
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
    this.ui.steer.addEventListener("click", () => this.steer());
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
    // What the chat history shows already; the app stream brings the runs after these.
    for (const r of runs ? runs.runs : []) this.followed.add(r.run_id);
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
    }
    await this.queue.refresh();
    this.appStream = followApp(id, (ev) => this.onAppEvent(ev));
    const unsent = sessionStorage.getItem(this.unsentKey());
    if (unsent) {
      sessionStorage.removeItem(this.unsentKey());
      try {
        this.start(JSON.parse(unsent));
      } catch {
        // Not a prompt this page wrote; nothing to send.
      }
    }
    await this.refreshSessions();
    this.files.refresh();
    this.preview.refresh();
    this.checkpoints.refresh();
    this.publisher.refresh();
    this.usage.refresh();
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
      this.shown = new Set(detail.messages.map((m) => m.id));
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
    this.ui.prompt.value = "";
    this.attached = [];
    this.renderAttached();
    this.start({ text, model: this.ui.model.value || "auto", attachments });
  }

  /** Where a prompt refused by an ended session waits for the next sign-in (this tab only). */
  unsentKey() {
    return `draftsmith.unsent.${this.app.id}`;
  }

  /** Sends the composer's text to the running turn (steering) instead of queueing it. */
  async steer() {
    const text = this.ui.prompt.value.trim();
    const run = this.run;
    if (!text || !run) return;
    this.ui.prompt.value = "";
    try {
      await api("POST", agent(this.app.id, `runs/${run.run_id}/messages`), { text });
    } catch (err) {
      showError(err, "Sending to the running turn");
      if (!this.ui.prompt.value) this.ui.prompt.value = text;
    }
  }

  /** The app stream: the queue as it is now, and any run accepted that is not followed yet. */
  onAppEvent(ev) {
    if (this.disposed) return;
    const p = ev.payload || {};
    if (ev.event === "queue.changed") {
      this.queue.set(p.items);
    } else if (ev.event === "run.accepted" || ev.event === "run.ended") {
      this.sync();
    } else if (ev.event === "draft.revised" && !this.run) {
      this.changed();
    }
  }

  /** Follows the app's active run when this page follows none (coalesced). */
  async sync() {
    if (this.syncing) {
      this.resync = true;
      return;
    }
    this.syncing = true;
    try {
      do {
        this.resync = false;
        if (this.run || this.starting || this.disposed) break;
        const runs = await api("GET", agent(this.app.id, "runs?limit=5"));
        // The oldest run this page has not shown: an active one, or one that ended before
        // the page looked (a quick prompt the queue started while Stop was still polling).
        const next = [...runs.runs].reverse().find((r) => !this.followed.has(r.run_id));
        if (!next || this.run || this.starting) continue;
        const ended = TERMINAL.has(next.status);
        if (next.chat_session_id !== this.session) {
          this.session = next.chat_session_id;
          await this.loadSession(next.chat_session_id, false);
          this.refreshSessions();
          if (ended) {
            // Its whole turn is in the session's history already; its steps and outcome
            // show as a loaded page shows its last run (a quick run can end before the
            // page looks).
            this.followed.add(next.run_id);
            this.replay(next);
            this.resync = true;
            continue;
          }
        } else {
          this.chat.user(next.input);
        }
        if (!this.run) this.attach(next);
      } while (this.resync);
    } catch (err) {
      showError(err, "Following the app");
    }
    this.syncing = false;
  }

  async start(item) {
    this.starting = true;
    this.controls();
    const body = { input: item.text, model_id: item.model || "auto", when_busy: "queue" };
    if (this.session) body.chat_session_id = this.session;
    // A prompt with attachments cannot wait in the queue: the server refuses it (400) then.
    const attachments = item.attachments || [];
    if (attachments.length) body.attachments = attachments.map((a) => a.upload_id);
    try {
      const run = await api("POST", agent(this.app.id, "runs"), body);
      this.starting = false;
      if (run.position !== undefined) {
        // Queued on the server (a run is active): the app stream reports its start. The
        // active run is followed now, as its `run.accepted` may have come while this
        // prompt was being sent (when the page follows nothing new).
        this.queue.refresh();
        this.controls();
        this.sync();
        return;
      }
      const fresh = this.session !== run.chat_session_id;
      this.session = run.chat_session_id;
      this.chat.user(item.text, attachments);
      this.attach(run);
      if (fresh) this.refreshSessions();
    } catch (err) {
      this.starting = false;
      if (err.status === 401) {
        // Signed out meanwhile: the prompt is sent after the next sign-in (it never reached
        // the server, so it is not in its queue).
        sessionStorage.setItem(this.unsentKey(), JSON.stringify(item));
      } else {
        showError(err, "Starting the run");
        if (!this.ui.prompt.value) this.ui.prompt.value = item.text;
        if (attachments.length && !this.attached.length) {
          this.attached = attachments;
          this.renderAttached();
        }
      }
      this.sync();
    }
    this.controls();
  }

  attach(run) {
    this.followed.add(run.run_id);
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

  /** Leaving the view: stop following (the server runs the queue without us). */
  dispose() {
    this.disposed = true;
    if (this.appStream) this.appStream.close();
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
    } else if (ev.event === "user.message" && !this.shown.has(p.message_id)) {
      // A message sent to the running turn (from any window) goes before the answer it steers.
      this.shown.add(p.message_id);
      const el = this.chat.user(p.text);
      el.classList.add("steered");
      this.assistant.el.before(el);
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
    this.usage.refresh();
    this.refreshSessions();
    // The server starts the next queued prompt; follow it when it does.
    this.sync();
  }

  /** After anything that changed the draft. */
  changed(message) {
    if (message) this.chat.note(message, "info");
    this.files.refresh();
    this.preview.refresh();
    this.checkpoints.refresh();
  }

  controls() {
    const busy = Boolean(this.run) || this.starting;
    this.ui.stop.disabled = !this.run || this.stopping;
    this.ui.send.textContent = busy ? "Queue" : "Send";
    this.ui.steer.hidden = !this.run;
    this.ui.steer.disabled = !this.run || this.stopping;
    document.body.dataset.run = this.run ? "active" : "idle";
  }
}

