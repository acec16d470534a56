//! A simulated prompt cache, so usage reports cache reads and writes the way the providers
//! do and a benchmark can compare runs with and without caching.
//!
//! A request is a chain of blocks (the model, each tool, the system prompt, each message's
//! content blocks); each block boundary has a hash of everything before it and a token
//! count (characters / 4).
//! - Anthropic caches by marker: a boundary whose block carries `cache_control` is written
//!   to the cache; each marker reads the longest cached prefix among the 20 boundaries up
//!   to it. Reads are the longest hit, writes the tokens from there to the last marker.
//! - OpenAI-compatible servers cache by themselves: every boundary is remembered and the
//!   longest one seen before is read; nothing is billed as a write.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::Value;

use crate::plan::estimate_tokens;
use crate::request::Dialect;
use crate::rules::fnv;

/// How many boundaries before a marker the Messages API checks for a cached prefix.
const LOOKBACK: usize = 20;

/// One block boundary.
struct Boundary {
    hash: u64,
    /// Tokens up to and including the block.
    tokens: u64,
    marked: bool,
}

/// What the cache did for one request, in tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheOutcome {
    pub read: u64,
    pub write: u64,
}

/// The prefixes a server has cached.
#[derive(Debug, Default)]
pub(crate) struct PromptCache {
    seen: Mutex<HashSet<u64>>,
}

impl PromptCache {
    /// Looks the request up and stores what it writes.
    pub fn serve(&self, dialect: Dialect, body: &Value) -> CacheOutcome {
        let chain = boundaries(dialect, body);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match dialect {
            Dialect::Anthropic => {
                let mut read = 0;
                let mut last_marker = None;
                for (m, boundary) in chain.iter().enumerate().filter(|(_, b)| b.marked) {
                    last_marker = Some(boundary.tokens);
                    let hit = chain[m.saturating_sub(LOOKBACK)..=m]
                        .iter()
                        .rev()
                        .find(|b| seen.contains(&b.hash));
                    if let Some(hit) = hit {
                        read = read.max(hit.tokens);
                    }
                }
                for boundary in chain.iter().filter(|b| b.marked) {
                    seen.insert(boundary.hash);
                }
                let write = last_marker.map_or(0, |last| last.saturating_sub(read));
                CacheOutcome { read, write }
            }
            Dialect::OpenAi => {
                let read = chain
                    .iter()
                    .rev()
                    .find(|b| seen.contains(&b.hash))
                    .map_or(0, |b| b.tokens);
                seen.extend(chain.iter().map(|b| b.hash));
                CacheOutcome { read, write: 0 }
            }
        }
    }
}

/// The block chain of a request, cache markers stripped from what is hashed.
fn boundaries(dialect: Dialect, body: &Value) -> Vec<Boundary> {
    let mut chain = Vec::new();
    let mut hash = fnv(body.get("model").and_then(Value::as_str).unwrap_or(""));
    let mut chars = 0usize;
    let mut push = |block: &Value, prefix: &str| {
        let marked = block.get("cache_control").is_some();
        // Only a marked block is copied, to hash it without its marker.
        let text = if marked {
            let mut block = block.clone();
            if let Some(object) = block.as_object_mut() {
                object.remove("cache_control");
            }
            block.to_string()
        } else {
            block.to_string()
        };
        chars += text.len();
        hash = fnv(&format!("{hash:016x}|{prefix}|{text}"));
        chain.push(Boundary {
            hash,
            tokens: estimate_tokens(chars),
            marked,
        });
    };
    let list = |key: &str| -> &[Value] {
        body.get(key)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    };
    for tool in list("tools") {
        push(tool, "tool");
    }
    match dialect {
        Dialect::Anthropic => {
            match body.get("system") {
                Some(Value::Array(blocks)) => blocks.iter().for_each(|b| push(b, "system")),
                Some(text @ Value::String(_)) => push(text, "system"),
                _ => {}
            }
            for message in list("messages") {
                let role = message.get("role").and_then(Value::as_str).unwrap_or("");
                match message.get("content") {
                    Some(Value::Array(blocks)) => blocks.iter().for_each(|b| push(b, role)),
                    Some(text) => push(text, role),
                    None => {}
                }
            }
        }
        Dialect::OpenAi => {
            for message in list("messages") {
                push(message, "message");
            }
        }
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(turns: usize, marked: bool) -> Value {
        let marker = || json!({"type": "ephemeral"});
        let mut messages = vec![json!({"role": "user", "content": "x".repeat(400)})];
        for t in 0..turns {
            messages.push(json!({"role": "assistant", "content": [{"type": "tool_use", "id": format!("t{t}"), "name": "a", "input": {}}]}));
            messages.push(json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": format!("t{t}"), "content": "y".repeat(400)}]}));
        }
        if marked {
            let last = messages.len() - 1;
            if let Some(block) = messages[last]
                .get_mut("content")
                .and_then(Value::as_array_mut)
                .and_then(|b| b.last_mut())
            {
                block["cache_control"] = marker();
            }
        }
        json!({"model": "m", "system": [{"type": "text", "text": "S", "cache_control": marker()}], "messages": messages})
    }

    #[test]
    fn markers_write_then_read_the_growing_prefix() {
        let cache = PromptCache::default();
        let first = cache.serve(Dialect::Anthropic, &request(1, true));
        assert_eq!(first.read, 0);
        assert!(first.write > 200, "{first:?}");
        let second = cache.serve(Dialect::Anthropic, &request(2, true));
        assert_eq!(
            second.read, first.write,
            "reads what the first request wrote"
        );
        assert!(second.write > 0 && second.write < first.write);
        let unmarked = PromptCache::default();
        let system_only = unmarked.serve(Dialect::Anthropic, &request(1, false));
        assert!(
            system_only.write < 20,
            "only the marked system prompt: {system_only:?}"
        );
    }

    #[test]
    fn automatic_caching_reads_the_longest_seen_prefix() {
        let cache = PromptCache::default();
        let body = |n: usize| json!({"model": "m", "messages": (0..n).map(|i| json!({"role": "user", "content": format!("{i}{}", "z".repeat(100))})).collect::<Vec<_>>()});
        assert_eq!(cache.serve(Dialect::OpenAi, &body(2)).read, 0);
        let again = cache.serve(Dialect::OpenAi, &body(3));
        assert!(again.read > 40 && again.write == 0, "{again:?}");
    }
}
