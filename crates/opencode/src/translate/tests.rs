//! The translator against event sequences shaped like those OpenCode 1.18 sends.

#![allow(clippy::unwrap_used)]

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::wire::parse_event;

const WS: &str = "/work/ws";

fn event(kind: &str, properties: Value) -> Event {
    let data = json!({"id": "evt_1", "type": kind, "properties": properties});
    parse_event(&data.to_string()).unwrap().1
}

fn info(id: &str, role: &str, completed: bool, error: Option<Value>) -> Event {
    let mut info = json!({"id": id, "sessionID": "s", "role": role, "time": {"created": 1}});
    if completed {
        info["time"]["completed"] = json!(2);
    }
    if let Some(error) = error {
        info["error"] = error;
    }
    event("message.updated", json!({"sessionID": "s", "info": info}))
}

fn part(message: &str, id: &str, kind: &str, extra: Value) -> Event {
    let mut part = json!({"id": id, "messageID": message, "sessionID": "s", "type": kind});
    if let (Some(part), Some(extra)) = (part.as_object_mut(), extra.as_object()) {
        part.extend(extra.clone());
    }
    event(
        "message.part.updated",
        json!({"sessionID": "s", "part": part}),
    )
}

fn delta(message: &str, id: &str, text: &str) -> Event {
    event(
        "message.part.delta",
        json!({"sessionID": "s", "messageID": message, "partID": id, "field": "text", "delta": text}),
    )
}

fn tool(message: &str, id: &str, name: &str, status: &str, input: Value, extra: Value) -> Event {
    let mut state = json!({"status": status, "input": input, "time": {"start": 10, "end": 35}});
    if let (Some(state), Some(extra)) = (state.as_object_mut(), extra.as_object()) {
        state.extend(extra.clone());
    }
    part(
        message,
        id,
        "tool",
        json!({"tool": name, "callID": format!("call_{id}"), "state": state}),
    )
}

fn run(t: &mut Translator, events: &[Event]) -> Vec<EventBody> {
    events
        .iter()
        .flat_map(|e| t.apply(e))
        .map(|(body, _)| body)
        .collect()
}

/// `run`, then the session goes idle.
fn run_to_idle(t: &mut Translator, events: &[Event]) -> Vec<EventBody> {
    let mut out = run(t, events);
    out.extend(t.finish().into_iter().map(|(body, _)| body));
    out
}

fn names(events: &[EventBody]) -> Vec<&'static str> {
    events.iter().map(EventBody::event_type).collect()
}

fn streamed(events: &[EventBody]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            EventBody::AssistantDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

fn edit_turn(message: &str, id: &str, status: &str, file: &str) -> Vec<Event> {
    let input = json!({"filePath": format!("{WS}/{file}"), "oldString": "a", "newString": "b"});
    let extra = if status == "error" {
        json!({"error": "Could not find oldString"})
    } else {
        json!({"output": "Edit applied."})
    };
    vec![
        info(message, "assistant", false, None),
        part(message, &format!("{id}s"), "step-start", json!({})),
        tool(message, id, "edit", status, input, extra),
        info(message, "assistant", true, None),
    ]
}

#[test]
fn a_turn_streams_text_and_tools_and_hides_reasoning() {
    let mut t = Translator::new(WS.into());
    let events = run_to_idle(
        &mut t,
        &[
            info("u", "user", false, None),
            part("u", "pu", "text", json!({"text": "write hello"})),
            info("m1", "assistant", false, None),
            part("m1", "s1", "step-start", json!({})),
            part("m1", "r1", "reasoning", json!({"text": ""})),
            delta("m1", "r1", "secret"),
            part("m1", "t1", "text", json!({"text": ""})),
            delta("m1", "t1", "I will "),
            delta("m1", "t1", "write."),
            tool("m1", "w", "write", "pending", json!({}), json!({})),
            tool(
                "m1",
                "w",
                "write",
                "running",
                json!({"filePath": format!("{WS}/hello.txt")}),
                json!({}),
            ),
            part("m1", "t1", "text", json!({"text": "I will write."})),
            tool(
                "m1",
                "w",
                "write",
                "completed",
                json!({"filePath": format!("{WS}/hello.txt")}),
                json!({"output": "Wrote file successfully."}),
            ),
            part("m1", "f1", "step-finish", json!({"reason": "tool-calls"})),
            info("m1", "assistant", true, None),
            info("m1", "assistant", true, None),
            info("m2", "assistant", false, None),
            part("m2", "s2", "step-start", json!({})),
            part("m2", "t2", "text", json!({"text": ""})),
            delta("m2", "t2", "Done."),
            info("m2", "assistant", true, None),
        ],
    );
    assert_eq!(
        names(&events),
        vec![
            "assistant.delta",
            "assistant.delta",
            "tool.started",
            "tool.completed",
            "assistant.message",
            "assistant.delta",
            "assistant.message",
        ]
    );
    assert_eq!(streamed(&events), "I will write.Done.");
    assert!(!format!("{events:?}").contains("secret"));
    let EventBody::ToolCompleted {
        paths,
        ms,
        tool_call_id,
        ..
    } = &events[3]
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        (paths.clone(), *ms, tool_call_id.as_str()),
        (vec!["hello.txt".to_owned()], 25, "call_w")
    );
    assert_eq!(
        t.outcome(true),
        Outcome::Completed {
            summary: "Done.".into()
        }
    );
    assert_eq!(t.transcript(), "I will write.\n\nDone.");
}

#[test]
fn tool_parts_before_the_message_metadata_still_count() {
    let mut t = Translator::new(WS.into());
    let events = run(
        &mut t,
        &[
            tool(
                "m1",
                "g",
                "glob",
                "running",
                json!({"pattern": "*"}),
                json!({}),
            ),
            tool(
                "m1",
                "g",
                "glob",
                "completed",
                json!({"pattern": "*"}),
                json!({"output": "a"}),
            ),
            info("m1", "assistant", true, None),
        ],
    );
    assert_eq!(names(&events), vec!["tool.started", "tool.completed"]);
}

#[test]
fn an_unrepaired_edit_failure_fails_the_run_unless_the_policy_is_off() {
    let mut t = Translator::new(WS.into());
    let events = run(&mut t, &edit_turn("m1", "e1", "error", "a.txt"));
    assert_eq!(names(&events), vec!["tool.started", "tool.failed"]);
    let Outcome::Failed { error } = t.outcome(true) else {
        panic!()
    };
    assert_eq!(error.code, ErrorCode::CodingAgentToolFailed);
    assert!(error.message.contains("a.txt"), "{}", error.message);
    assert!(matches!(t.outcome(false), Outcome::Completed { .. }));
    // An edit of another file does not repair it; one of the same file does.
    run(&mut t, &edit_turn("m2", "e2", "completed", "b.txt"));
    assert!(matches!(t.outcome(true), Outcome::Failed { .. }));
    run(&mut t, &edit_turn("m3", "e3", "completed", "a.txt"));
    assert!(matches!(t.outcome(true), Outcome::Completed { .. }));
}

#[test]
fn session_errors_fail_the_run_but_aborts_do_not() {
    let mut t = Translator::new(WS.into());
    let aborted = json!({"name": "MessageAbortedError", "data": {"message": "aborted"}});
    run(
        &mut t,
        &[event(
            "session.error",
            json!({"sessionID": "s", "error": aborted}),
        )],
    );
    assert!(t.fatal().is_none());
    let api = json!({"name": "APIError", "data": {"message": "your request is bad", "isRetryable": false}});
    run(
        &mut t,
        &[event(
            "session.error",
            json!({"sessionID": "s", "error": api}),
        )],
    );
    let Outcome::Failed { error } = t.outcome(true) else {
        panic!()
    };
    assert_eq!(
        (error.code, error.message.as_str()),
        (ErrorCode::CodingAgentModelError, "your request is bad")
    );
}

#[test]
fn a_poll_after_deltas_repeats_nothing_and_retries_ride_on_the_next_event() {
    let mut t = Translator::new(WS.into());
    let retry = event(
        "session.status",
        json!({"sessionID": "s", "status": {"type": "retry", "attempt": 1, "message": "Connection reset by server", "next": 5}}),
    );
    let first = [
        info("m1", "assistant", false, None),
        part("m1", "s1", "step-start", json!({})),
        part("m1", "t1", "text", json!({"text": ""})),
        delta("m1", "t1", "partial "),
        retry.clone(),
        retry,
        part("m1", "s2", "step-start", json!({})),
        part("m1", "t2", "text", json!({"text": ""})),
        delta("m1", "t2", "partial "),
        delta("m1", "t2", "answer"),
    ];
    let emitted: Vec<Emitted> = first.iter().flat_map(|e| t.apply(e)).collect();
    let bodies: Vec<EventBody> = emitted.iter().map(|(b, _)| b.clone()).collect();
    assert_eq!(streamed(&bodies), "partial answer");
    assert_eq!(emitted[1].1.len(), 1, "{emitted:?}");
    assert_eq!(emitted[1].1[0].code, "opencode_retry");
    assert!(t.retry().is_some());
    let snapshot: Vec<MessageWithParts> = serde_json::from_value(json!([
        {"info": {"id": "m1", "sessionID": "s", "role": "assistant", "time": {"created": 1, "completed": 3}, "finish": "stop"},
         "parts": [
            {"id": "s1", "messageID": "m1", "type": "step-start"},
            {"id": "t1", "messageID": "m1", "type": "text", "text": ""},
            {"id": "s2", "messageID": "m1", "type": "step-start"},
            {"id": "t2", "messageID": "m1", "type": "text", "text": "partial answer."},
            {"id": "f2", "messageID": "m1", "type": "step-finish"}]}
    ]))
    .unwrap();
    let mut polled: Vec<EventBody> = t
        .apply_snapshot(&snapshot)
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    polled.extend(t.finish().into_iter().map(|(b, _)| b));
    assert_eq!(names(&polled), vec!["assistant.delta", "assistant.message"]);
    assert_eq!(streamed(&polled), ".");
    assert!(t.retry().is_none());
    assert_eq!(t.apply_snapshot(&snapshot).len(), 0);
    assert_eq!(t.transcript(), "partial answer.");
}

#[test]
fn a_completion_that_overtakes_the_text_still_yields_the_whole_answer() {
    let mut t = Translator::new(WS.into());
    let events = run_to_idle(
        &mut t,
        &[
            info("m1", "assistant", false, None),
            part("m1", "s1", "step-start", json!({})),
            // Deltas for a part whose kind is not announced yet…
            delta("m1", "t1", "All "),
            delta("m1", "t1", "done."),
            // …and the completion before the part's own update.
            info("m1", "assistant", true, None),
            part("m1", "t1", "text", json!({"text": "All done."})),
            part("m1", "f1", "step-finish", json!({"reason": "stop"})),
        ],
    );
    assert_eq!(names(&events), vec!["assistant.delta", "assistant.message"]);
    assert_eq!(streamed(&events), "All done.");
    assert_eq!(
        t.outcome(true),
        Outcome::Completed {
            summary: "All done.".into()
        }
    );
}

/// Assistant message `id` completed with the finish reason `finish`.
fn finished(id: &str, finish: &str) -> Event {
    let info = json!({"id": id, "sessionID": "s", "role": "assistant",
        "time": {"created": 1, "completed": 2}, "finish": finish});
    event("message.updated", json!({"sessionID": "s", "info": info}))
}

/// Text part `id` of `message` as its first update sends it: empty, just begun.
fn opened_text(message: &str, id: &str) -> Event {
    part(
        message,
        id,
        "text",
        json!({"text": "", "time": {"start": 1}}),
    )
}

/// Text part `id` of `message` as its last update sends it: whole, with its end.
fn whole_text(message: &str, id: &str, text: &str) -> Event {
    part(
        message,
        id,
        "text",
        json!({"text": text, "time": {"start": 1, "end": 2}}),
    )
}

/// The events of answer step `m2` as OpenCode streams them: its start, its text part
/// opened, two deltas, then the part whole.
fn answer_step() -> Vec<Event> {
    vec![
        part("m2", "s2", "step-start", json!({})),
        opened_text("m2", "t2"),
        delta("m2", "t2", "Two notes "),
        delta("m2", "t2", "written."),
        whole_text("m2", "t2", "Two notes written."),
    ]
}

/// Each event of `events` applied in turn, with whether the translator then held the
/// prompt's work settled.
fn settled_after_each(t: &mut Translator, events: &[Event]) -> Vec<bool> {
    events
        .iter()
        .map(|e| {
            t.apply(e);
            t.settled()
        })
        .collect()
}

#[test]
fn the_events_settle_a_prompt_only_once_its_answer_is_whole() {
    let mut t = Translator::new(WS.into());
    // OpenCode 1.18's order: a tool step, then the answer step.
    let settled = settled_after_each(
        &mut t,
        &[
            info("u", "user", false, None),
            part("u", "pu", "text", json!({"text": "take notes"})),
            info("m1", "assistant", false, None),
            part("m1", "s1", "step-start", json!({})),
            opened_text("m1", "t1"),
            delta("m1", "t1", "Writing."),
            whole_text("m1", "t1", "Writing."),
            tool(
                "m1",
                "w",
                "write",
                "completed",
                json!({"filePath": format!("{WS}/a.txt")}),
                json!({"output": "Wrote file successfully."}),
            ),
            part("m1", "f1", "step-finish", json!({"reason": "tool-calls"})),
            finished("m1", "tool-calls"),
            info("m2", "assistant", false, None),
        ]
        .into_iter()
        .chain(answer_step())
        .chain([part("m2", "f2", "step-finish", json!({"reason": "stop"}))])
        .collect::<Vec<_>>(),
    );
    assert!(
        settled.iter().all(|s| !s),
        "a call for tools or a step in flight: {settled:?}"
    );
    assert!(settled_after_each(&mut t, &[finished("m2", "stop")]) == [true]);
    assert_eq!(
        t.finish().len(),
        1,
        "the answer is emitted once the idle is believed"
    );
    assert_eq!(t.answers(), ["Writing.", "Two notes written."]);
}

#[test]
fn a_completion_that_overtakes_its_text_leaves_the_prompt_unsettled() {
    let mut t = Translator::new(WS.into());
    let settled = settled_after_each(
        &mut t,
        &[
            info("m1", "assistant", false, None),
            part("m1", "s1", "step-start", json!({})),
            opened_text("m1", "t1"),
            delta("m1", "t1", "Half"),
            part("m1", "f1", "step-finish", json!({"reason": "stop"})),
            finished("m1", "stop"),
            // The part's last update arrives after the completion.
            whole_text("m1", "t1", "Half and whole."),
        ],
    );
    assert_eq!(settled, [false, false, false, false, false, false, true]);
    assert_eq!(t.answers(), ["Half and whole."]);

    // Deltas that overtake their part's first update open it as well.
    let mut t = Translator::new(WS.into());
    let settled = settled_after_each(
        &mut t,
        &[
            info("m1", "assistant", false, None),
            delta("m1", "t1", "All "),
            part("m1", "f1", "step-finish", json!({"reason": "stop"})),
            finished("m1", "stop"),
            whole_text("m1", "t1", "All done."),
        ],
    );
    assert_eq!(settled, [false, false, false, false, true]);

    // A completion without its step's end, or with no finish reason, settles nothing.
    let mut t = Translator::new(WS.into());
    let settled = settled_after_each(
        &mut t,
        &[
            info("m1", "assistant", false, None),
            whole_text("m1", "t1", "Done."),
            info("m1", "assistant", true, None),
            part("m1", "f1", "step-finish", json!({"reason": "stop"})),
        ],
    );
    assert_eq!(settled, [false; 4]);
}

#[test]
fn a_retry_an_error_or_a_new_prompt_unsettles_until_a_new_answer_is_whole() {
    let answer = |m: &str, text: &str| {
        vec![
            info(m, "assistant", false, None),
            whole_text(m, &format!("{m}t"), text),
            part(
                m,
                &format!("{m}f"),
                "step-finish",
                json!({"reason": "stop"}),
            ),
            finished(m, "stop"),
        ]
    };
    let mut t = Translator::new(WS.into());
    assert!(!t.settled(), "nothing answered yet");
    run(&mut t, &answer("m1", "First."));
    assert!(t.settled());

    // A steering prompt: the earlier answer does not settle it.
    t.next_prompt();
    assert!(!t.settled());
    run(&mut t, &[info("u2", "user", false, None)]);
    assert!(!t.settled());
    run(&mut t, &answer("m2", "Second."));
    assert!(t.settled());

    // A retry pending on the model call.
    let retry = json!({"type": "retry", "attempt": 1, "message": "overloaded", "next": 5});
    run(
        &mut t,
        &[event(
            "session.status",
            json!({"sessionID": "s", "status": retry}),
        )],
    );
    assert!(!t.settled());

    // A failed model call, even completed, is looked at in the messages.
    let mut t = Translator::new(WS.into());
    let error = json!({"name": "APIError", "data": {"message": "boom"}});
    run(&mut t, &answer("m1", "Partial."));
    run(&mut t, &[info("m1", "assistant", true, Some(error))]);
    assert!(!t.settled());
}

#[test]
fn a_prompts_answer_ends_the_run_only_once_the_events_showed_every_earlier_step() {
    let mut t = Translator::new(WS.into());
    let write = |status: &str| {
        tool(
            "m1",
            "w",
            "write",
            status,
            json!({"filePath": format!("{WS}/a.txt")}),
            json!({"output": "Wrote file successfully."}),
        )
    };
    run(
        &mut t,
        &[
            info("u", "user", false, None),
            part("u", "pu", "text", json!({"text": "take notes"})),
            info("m1", "assistant", false, None),
            part("m1", "s1", "step-start", json!({})),
            write("running"),
        ],
    );
    // The synchronous answer: the last message, whole, before any of its events.
    let answer = |finish: &str| -> MessageWithParts {
        serde_json::from_value(json!({
            "info": {"id": "m2", "sessionID": "s", "role": "assistant",
                "time": {"created": 3, "completed": 4}, "finish": finish},
            "parts": [
                {"id": "s2", "messageID": "m2", "sessionID": "s", "type": "step-start"},
                {"id": "t2", "messageID": "m2", "sessionID": "s", "type": "text",
                    "text": "Two notes written.", "time": {"start": 3, "end": 4}},
                {"id": "f2", "messageID": "m2", "sessionID": "s", "type": "step-finish",
                    "reason": finish}
            ]
        }))
        .unwrap()
    };
    let last = answer("stop");
    assert!(
        !t.ends_with(&last, 2),
        "the first step's tool call and end were not seen yet"
    );
    run(
        &mut t,
        &[
            write("completed"),
            part("m1", "f1", "step-finish", json!({"reason": "tool-calls"})),
        ],
    );
    assert!(
        !t.ends_with(&last, 2),
        "the first step's message is not completed"
    );
    run(&mut t, &[finished("m1", "tool-calls")]);
    assert!(t.ends_with(&last, 2));
    assert!(
        !t.ends_with(&last, 3),
        "a model call whose events were not seen"
    );
    assert!(
        !t.ends_with(&last, 1),
        "fewer calls than messages: a count to distrust"
    );
    assert!(
        !t.ends_with(&answer("tool-calls"), 2),
        "an answer asking for tools is no end"
    );
    let emitted: Vec<EventBody> = t
        .apply_snapshot(std::slice::from_ref(&last))
        .into_iter()
        .map(|(body, _)| body)
        .collect();
    assert_eq!(streamed(&emitted), "Two notes written.");
    assert!(t.settled());
    assert!(
        t.ends_with(&last, 2),
        "the answer applied is still the latest"
    );
    // The answer's own events, arriving after it (a steered run reads on), add nothing.
    let mut late_events = answer_step();
    late_events.push(finished("m2", "stop"));
    let late = run(&mut t, &late_events);
    assert_eq!(names(&late), Vec::<&str>::new(), "{late:?}");
    let rest = run_to_idle(&mut t, &[]);
    assert_eq!(names(&rest), ["assistant.message"]);
    assert_eq!(t.answers(), ["Two notes written."]);
    assert_eq!(t.take_calls().len(), 2, "each call counted once");
}

#[test]
fn an_earlier_prompts_late_events_do_not_start_the_next_one() {
    let mut t = Translator::new(WS.into());
    let mut first = vec![
        info("u", "user", false, None),
        part("u", "pu", "text", json!({"text": "take notes"})),
        info("m2", "assistant", false, None),
    ];
    first.extend(answer_step());
    run_to_idle(&mut t, &first);
    // A steering message is the next prompt; the first one's last events arrive after it.
    t.next_prompt();
    let mut late = answer_step();
    late.push(finished("m2", "stop"));
    assert_eq!(names(&run(&mut t, &late)), Vec::<&str>::new());
    assert!(
        !t.is_active(),
        "the first prompt's events are no sign of work on the second"
    );
    run(
        &mut t,
        &[event(
            "session.status",
            json!({"sessionID": "s", "status": {"type": "busy"}}),
        )],
    );
    assert!(t.is_active());
}
