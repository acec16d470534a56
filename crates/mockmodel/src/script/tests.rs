//! The script's JSON forms: shorthands, round trips and the faults they name.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn shorthand_array_and_object_turns() {
    let script = Script::from_json(
        r#"{
          "chunk_delay_ms": 5,
          "scenarios": [{
            "name": "s",
            "match": {"contains": "hello"},
            "turns": [
              {"steps": [{"text": "hi", "chunk": 1}], "finish": "length", "usage": {"input_tokens": 3}},
              [{"error": {"status": 429, "retry_after": 2}}, {"steps": []}],
              {"attempts": [{"steps": [{"tool_call": {"name": "write", "arguments": "{bad", "split": 2}}]}]},
              {}
            ]
          }]
        }"#,
    )
    .unwrap();
    assert_eq!(script.chunk_delay_ms, 5);
    let turns = &script.scenarios[0].turns;
    assert_eq!(turns.len(), 4);
    assert_eq!(
        turns[0].attempts,
        vec![Attempt::Reply(Reply {
            steps: vec![Step::Text {
                text: "hi".into(),
                chunk: Some(1)
            }],
            finish: Some(Finish::Length),
            usage: Some(Usage {
                input_tokens: Some(3),
                ..Usage::default()
            }),
        })]
    );
    assert_eq!(turns[1].attempts.len(), 2);
    match &turns[1].attempts[0] {
        Attempt::Error(e) => {
            assert_eq!(e.status, 429);
            assert_eq!(e.retry_after, Some(2));
            assert_eq!(e.message, "mock-model scripted error");
        }
        other => panic!("unexpected {other:?}"),
    }
    match &turns[2].attempts[0] {
        Attempt::Reply(r) => match &r.steps[0] {
            Step::ToolCall(call) => assert_eq!(call.arguments_text(), "{bad"),
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(turns[3].attempts, vec![Attempt::Reply(Reply::default())]);
}

#[test]
fn round_trips_through_serialize() {
    let text = r#"{"scenarios":[{"name":"a","turns":[
        {"steps":[{"reasoning":"r","chunk":2},{"redacted_thinking":"x"},{"delay_ms":3},{"cut":true},{"malformed":"x"},
                  {"tool_call":{"id":"c","name":"n","arguments":{"a":1},"split":3}}]},
        {"error":{"status":500,"message":"boom","type":"api_error"}}]}]}"#;
    let script = Script::from_json(text).unwrap();
    let again = Script::from_json(&serde_json::to_string(&script).unwrap()).unwrap();
    assert_eq!(script, again);
}

#[test]
fn errors_name_the_path() {
    let err = Script::from_json(
        r#"{"scenarios":[{"name":"a","turns":[{"steps":[{"text":"x","bogus":1}]}]}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("scenarios[0].turns[0]"), "{err}");
    assert!(err.contains("bogus"), "{err}");

    let err = Script::from_json(
        r#"{"scenarios":[{"name":"a","turns":[{"steps":[{"text":"x","delay_ms":1}]}]}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("exactly one"), "{err}");

    let err = Script::from_json(r#"{"scenarios":[{"name":"a","turns":[[]]}]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least one attempt"), "{err}");

    let err = Script::from_json(r#"{"scenarios":[]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least one scenario"), "{err}");

    let err =
        Script::from_json(r#"{"scenarios":[{"name":"a","turns":[{"error":{"status":200}}]}]}"#)
            .unwrap_err()
            .to_string();
    assert!(err.contains("400..=599"), "{err}");

    assert!(Script::from_json(r#"{"scenarios":[{"name":"a","turns":[]}]} x"#).is_err());
    assert!(Script::from_json(r#"{"scenarios":[{"name":"a","turns":[]}],"x":1}"#).is_err());
}

#[test]
fn from_file_reports_missing_file() {
    let err = Script::from_file("/nonexistent/script.json").unwrap_err();
    assert!(matches!(err, ScriptError::Read { .. }));
}
