//! The context-window check: a real model refuses a request whose input and answer reserve do
//! not fit its window, so the mock does too, and counts it, so a test proves that a client
//! never sent one.

use serde_json::Value;

/// Why a request does not fit `window` tokens, or `None` when it does. The input is
/// estimated as the body's bytes / 4 (the mock's token measure, see `plan::estimate_tokens`);
/// the reserve is the request's `max_tokens` (or `max_completion_tokens`).
pub(crate) fn overflow(window: u64, raw_len: usize, body: &Value) -> Option<String> {
    let input = crate::plan::estimate_tokens(raw_len);
    let reserve = ["max_tokens", "max_completion_tokens"]
        .iter()
        .find_map(|key| body.get(*key).and_then(Value::as_u64))
        .unwrap_or(0);
    let total = input.saturating_add(reserve);
    (total > window).then(|| {
        format!(
            "context window exceeded: {input} input tokens + {reserve} reserved for the answer = {total} > {window}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_input_and_reserve() {
        let body = json!({"max_tokens": 100});
        assert_eq!(overflow(200, 400, &body), None);
        let message = overflow(199, 400, &body).unwrap_or_default();
        assert!(message.contains("200 > 199"), "{message}");
        let reasoning = json!({"max_completion_tokens": 150});
        assert!(overflow(200, 400, &reasoning).is_some());
    }
}
