//! Context management inside a native run, against a scripted model that refuses (and counts)
//! every request over its context window: long runs elide and compact, a huge output is
//! elided, and a run that cannot fit fails with its code instead of looping.

use draftsmith_core::{ErrorCode, EventBody};
use draftsmith_engine::{ModelSettings, Outcome, ProviderKind};
use draftsmith_mockmodel::RecordedRequest;
use serde_json::{Value, json};

use crate::native::{Ran, Setup, run_native_with};

const WINDOW: u32 = 16_384;
const SUMMARY: &str = "Summary: big.txt was read again and again; nothing changed yet.";

/// A 20 KB text file of plain lines.
fn big_file(bytes: usize) -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < bytes {
        text.push_str(&format!(
            "line {i:05} of the big file, plain words to read\n"
        ));
        i += 1;
    }
    text.truncate(bytes);
    text
}

/// `reads` turns that read `path`, then a final answer; a summariser scenario first.
fn reading_script(reads: usize, path: &str, window: u32) -> String {
    let mut turns: Vec<Value> = (0..reads)
        .map(|i| {
            json!({"steps": [{"tool_call": {"id": format!("call_{i}"), "name": "read",
                "arguments": {"path": path}}}]})
        })
        .collect();
    turns.push(json!({"steps": [{"text": format!("Done after {reads} reads.")}]}));
    json!({
        "context_window": window,
        "scenarios": [
            {"name": "summary", "match": {"contains": "condense the work log"},
             "turns": [{"steps": [{"text": SUMMARY}]}]},
            {"name": "main", "sequential": true, "turns": turns}
        ]
    })
    .to_string()
}

fn windowed(window: u32) -> ModelSettings {
    ModelSettings {
        context_window: Some(window),
        max_output_tokens: Some(1_024),
        ..ModelSettings::default()
    }
}

async fn run(script: &str, window: u32, setup: Setup) -> Ran {
    run_native_with(
        script,
        ProviderKind::OpenAi,
        "coder",
        windowed(window),
        setup,
    )
    .await
}

fn compactions(ran: &Ran) -> Vec<(String, usize, u32)> {
    ran.sink
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            EventBody::ContextCompacted {
                summary,
                replaced_messages,
                compaction,
                ..
            } => Some((summary.clone(), *replaced_messages, *compaction)),
            _ => None,
        })
        .collect()
}

fn main_requests(ran: &Ran) -> Vec<RecordedRequest> {
    ran.model
        .requests()
        .into_iter()
        .filter(|r| r.scenario == "main")
        .collect()
}

/// Every tool result's content in a request, in order.
fn tool_results(request: &RecordedRequest) -> Vec<String> {
    request.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_sixty_step_run_of_20_kb_outputs_stays_inside_a_16k_window() {
    let setup = Setup {
        files: vec![("big.txt", big_file(20 * 1024))],
        max_steps: 70,
        max_compactions: 3,
        ..Setup::default()
    };
    let ran = run(&reading_script(60, "big.txt", WINDOW), WINDOW, setup).await;
    // The scripted model checked every request against the window: none exceeded it.
    assert_eq!(ran.model.violations(), Vec::<String>::new());
    assert_eq!(
        ran.finished.outcome,
        Outcome::Completed {
            summary: "Done after 60 reads.".into()
        }
    );
    let done = compactions(&ran);
    assert!((1..=3).contains(&done.len()), "{} compactions", done.len());
    let summaries: Vec<RecordedRequest> = ran
        .model
        .requests()
        .into_iter()
        .filter(|r| r.scenario == "summary")
        .collect();
    assert_eq!(summaries.len(), done.len(), "one model call per compaction");
    for (i, (summary, replaced, number)) in done.iter().enumerate() {
        assert_eq!(summary, SUMMARY);
        assert_eq!(*number, i as u32 + 1);
        assert!(*replaced > 2);
    }
    let main = main_requests(&ran);
    assert_eq!(main.len(), 61);
    // Once written, the summary is sent with every later step (reused, not rewritten).
    let first = main
        .iter()
        .position(|r| r.body.to_string().contains(SUMMARY))
        .unwrap();
    assert!(
        main[first..]
            .iter()
            .all(|r| r.body.to_string().contains(SUMMARY))
    );
    assert!(first > 1 && first < 60);
    for request in &main[1..] {
        let results = tool_results(request);
        // The newest output is whole; older ones were elided with a marker.
        assert!(
            results
                .last()
                .unwrap()
                .contains("line 00000 of the big file")
        );
        assert!(!results.last().unwrap().contains("elided"));
        for older in &results[..results.len() - 1] {
            assert!(older.starts_with("[tool output elided"), "{older:.80}");
        }
    }
}

#[tokio::test]
async fn a_single_output_too_large_for_the_window_is_elided_not_sent() {
    let setup = Setup {
        files: vec![("huge.txt", big_file(60 * 1024))],
        ..Setup::default()
    };
    let ran = run(&reading_script(1, "huge.txt", WINDOW), WINDOW, setup).await;
    assert_eq!(ran.model.violations(), Vec::<String>::new());
    assert!(matches!(ran.finished.outcome, Outcome::Completed { .. }));
    let main = main_requests(&ran);
    assert_eq!(main.len(), 2);
    let result = tool_results(&main[1]).pop().unwrap();
    assert!(result.contains("bytes elided here"), "{result:.200}");
    assert!(result.len() < 40 * 1024, "{} bytes sent", result.len());
    // Both ends survive.
    assert!(result.contains("line 00000"));
    assert!(compactions(&ran).is_empty());
}

#[tokio::test]
async fn a_window_too_small_for_the_system_prompt_fails_at_once_with_its_code() {
    let ran = run(
        &reading_script(1, "notes.txt", 1_536),
        1_536,
        Setup::default(),
    )
    .await;
    let Outcome::Failed { error } = &ran.finished.outcome else {
        panic!("{:?}", ran.finished.outcome);
    };
    assert_eq!(error.code, ErrorCode::CodingAgentContextExhausted);
    assert!(error.message.contains("system prompt"), "{}", error.message);
    assert_eq!(error.details.as_ref().unwrap()["context_window"], 1_536);
    // Nothing was sent: the model would have refused it.
    assert!(ran.model.requests().is_empty());
}

#[tokio::test]
async fn a_run_out_of_compactions_fails_with_its_code_instead_of_looping() {
    let setup = Setup {
        files: vec![("big.txt", big_file(20 * 1024))],
        max_steps: 70,
        max_compactions: 0,
        ..Setup::default()
    };
    let ran = run(&reading_script(60, "big.txt", WINDOW), WINDOW, setup).await;
    assert_eq!(ran.model.violations(), Vec::<String>::new());
    let Outcome::Failed { error } = &ran.finished.outcome else {
        panic!("{:?}", ran.finished.outcome);
    };
    assert_eq!(error.code, ErrorCode::CodingAgentContextExhausted);
    assert_eq!(error.details.as_ref().unwrap()["compactions"], 0);
    let requests = ran.model.requests();
    assert!(requests.iter().all(|r| r.scenario == "main"));
    assert!(requests.len() < 60, "{} requests", requests.len());
}
