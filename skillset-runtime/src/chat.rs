//! Chat templates: a conversation rendered exactly as transformers'
//! `apply_chat_template` renders it, then encoded as the text-generation pipeline
//! encodes a chat.
//!
//! transformers compiles templates with Jinja2 (`trim_blocks`, `lstrip_blocks`, loop
//! controls) and adds `raise_exception`, `strftime_now`, a `tojson` that writes Python's
//! `json.dumps` (no HTML escaping), `namespace` and `dict`; the template sees the
//! messages, `add_generation_prompt`, `tools` and `documents` (none here) and the
//! tokenizer's named special tokens (`bos_token`, `eos_token`, ...). MiniJinja renders
//! the same language, with Python's string and dict methods (`.strip()`, `.split()`,
//! `.startswith()`, `.items()`, ...) from its `pycompat` callback.
//!
//! Where the template comes from, in transformers' order: `chat_template.jinja`, else
//! tokenizer_config.json's `chat_template` (a string, or named templates of which
//! `default` is used), else a processor's `chat_template.json`.

use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};

/// One message of a conversation: `{"role": "user", "content": "..."}`, plus any other
/// fields a template reads (`tool_calls`, `reasoning_content`, ...).
///
/// ```
/// use skillset_runtime::ChatMessage;
///
/// let chat = vec![ChatMessage::system("Answer briefly."), ChatMessage::user("Capital of France?")];
/// let json = serde_json::to_string(&chat[1])?;
/// assert_eq!(json, r#"{"role":"user","content":"Capital of France?"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    /// Other fields, passed to the template as they are.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ChatMessage {
    /// A message with `role` and `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            extra: serde_json::Map::new(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }

    /// The message as the template sees it: `role`, `content`, then the other fields
    /// (null fields dropped, as transformers drops `None` values), with reasoning under
    /// both `reasoning_content` and `thinking` as transformers aliases it.
    fn to_template_value(&self) -> Value {
        let mut entries: Vec<(String, Value)> = vec![
            ("role".into(), Value::from(self.role.as_str())),
            ("content".into(), Value::from(self.content.as_str())),
        ];
        let reasoning = ["reasoning_content", "thinking", "reasoning"]
            .iter()
            .find_map(|k| self.extra.get(*k).filter(|v| !v.is_null()).cloned());
        for (k, v) in &self.extra {
            if v.is_null() || (reasoning.is_some() && (k == "thinking" || k == "reasoning_content"))
            {
                continue;
            }
            entries.push((k.clone(), Value::from_serialize(v)));
        }
        if let Some(r) = reasoning {
            entries.insert(0, ("thinking".into(), Value::from_serialize(&r)));
            entries.push(("reasoning_content".into(), Value::from_serialize(&r)));
        }
        Value::from_iter(entries)
    }
}

/// The output of a chat: the conversation with the new assistant message (or, when the
/// conversation ended with an assistant message, that message continued), as
/// transformers' text-generation pipeline returns it for a chat, plus the new tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatGeneration {
    pub generated_text: Vec<ChatMessage>,
    pub token_ids: Vec<u32>,
}

/// A checkpoint's chat template.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    /// Where it was read (for messages).
    origin: String,
}

/// The tag transformers appends to a final message it continues, to find where the
/// rendered message ends.
const CONTINUE_TAG: &str = "CONTINUE_FINAL_MESSAGE_TAG ";

impl ChatTemplate {
    /// A template from its Jinja source.
    pub fn new(source: impl Into<String>) -> Self {
        ChatTemplate {
            source: source.into(),
            origin: "the given template".into(),
        }
    }

    /// The checkpoint's template, `None` when it has none.
    pub fn load(ckpt: &Checkpoint) -> Result<Option<Self>> {
        if let Some(bytes) = ckpt.read("chat_template.jinja")? {
            let path = ckpt.dir.join("chat_template.jinja");
            let source = String::from_utf8(bytes.into_owned())
                .map_err(|_| Error::invalid_file(&path, "is not UTF-8"))?;
            return Ok(Some(ChatTemplate {
                source,
                origin: path.display().to_string(),
            }));
        }
        for (file, what) in [
            ("tokenizer_config.json", "`chat_template`"),
            ("chat_template.json", "`chat_template`"),
        ] {
            let Some(doc) = ckpt.json(file)? else {
                continue;
            };
            let path = ckpt.dir.join(file);
            match doc.get("chat_template") {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::String(s)) => {
                    return Ok(Some(ChatTemplate {
                        source: s.clone(),
                        origin: format!("{}'s {what}", path.display()),
                    }))
                }
                Some(serde_json::Value::Array(named)) => {
                    // Named templates: transformers uses `default` (`tool_use` is for
                    // calls with tools, which this does not pass).
                    let default = named.iter().find(|t| t["name"] == "default");
                    let Some(t) = default.and_then(|t| t["template"].as_str()) else {
                        let names: Vec<&str> =
                            named.iter().filter_map(|t| t["name"].as_str()).collect();
                        return Err(Error::invalid_file(
                            &path,
                            format!(
                                "has named chat templates ({}) and none is `default`",
                                names.join(", ")
                            ),
                        ));
                    };
                    return Ok(Some(ChatTemplate {
                        source: t.to_string(),
                        origin: format!("{}'s default {what}", path.display()),
                    }));
                }
                Some(_) => {
                    return Err(Error::invalid_file(
                        &path,
                        "`chat_template` must be a string or a list of named templates",
                    ))
                }
            }
        }
        Ok(None)
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Render `messages` as `apply_chat_template(messages, add_generation_prompt=...,
    /// continue_final_message=..., tokenize=False)` does, with `special_tokens` (name,
    /// token) in the template's context and `now` as the clock `strftime_now` reads
    /// (UTC).
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        continue_final_message: bool,
        special_tokens: &[(String, String)],
        now: SystemTime,
    ) -> Result<String> {
        if messages.is_empty() {
            return Err(Error::InvalidInput(
                "an empty conversation: a chat needs at least one message".into(),
            ));
        }
        if continue_final_message && add_generation_prompt {
            return Err(Error::InvalidOption(
                "a final message is either continued or followed by a generation prompt, not both"
                    .into(),
            ));
        }
        let mut values: Vec<Value> = messages
            .iter()
            .map(ChatMessage::to_template_value)
            .collect();
        let final_content = messages
            .last()
            .map(|m| m.content.clone())
            .unwrap_or_default();
        if continue_final_message {
            if !self.source.contains("content") {
                return Err(Error::InvalidInput(format!(
                    "the chat template ({}) never reads a message's `content`, so the final message cannot be continued",
                    self.origin
                )));
            }
            let mut last = messages.last().expect("not empty").clone();
            last.content.push_str(CONTINUE_TAG);
            *values.last_mut().expect("not empty") = last.to_template_value();
        }
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", move |format: String| strftime(&format, now));
        env.add_template("chat", &self.source)
            .map_err(|e| self.error(e))?;
        let template = env.get_template("chat").map_err(|e| self.error(e))?;
        let mut context: Vec<(String, Value)> = special_tokens
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        context.push(("messages".into(), Value::from(values)));
        context.push(("tools".into(), Value::from(())));
        context.push(("documents".into(), Value::from(())));
        context.push((
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        ));
        let rendered = template
            .render(Value::from_iter(context))
            .map_err(|e| self.error(e))?;
        if !continue_final_message {
            return Ok(rendered);
        }
        let tag = CONTINUE_TAG.trim();
        if !rendered.contains(final_content.trim()) || !rendered.contains(tag) {
            return Err(Error::InvalidInput(format!(
                "the final message to continue ({:?}) does not appear in the chat the template ({}) renders",
                final_content.trim(),
                self.origin
            )));
        }
        let at = rendered.rfind(tag).expect("checked");
        Ok(if rendered[at..].starts_with(CONTINUE_TAG) {
            rendered[..at].to_string()
        } else {
            rendered[..at].trim_end().to_string()
        })
    }

    fn error(&self, e: minijinja::Error) -> Error {
        if e.kind() == ErrorKind::InvalidOperation {
            if let Some(msg) = e.detail().and_then(|d| d.strip_prefix(RAISED)) {
                return Error::InvalidInput(format!(
                    "the chat template refuses this conversation: {msg}"
                ));
            }
        }
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        Error::InvalidInput(format!(
            "the chat template ({}) failed: {text}",
            self.origin
        ))
    }
}

const RAISED: &str = "raise_exception: ";

/// transformers' `raise_exception(message)`: the template refuses the conversation.
fn raise_exception(message: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!("{RAISED}{message}"),
    ))
}

/// transformers' `tojson`: Python's `json.dumps(x, ensure_ascii=False, indent=indent,
/// separators=separators, sort_keys=sort_keys)` (no HTML escaping, unlike Jinja's).
fn tojson(value: Value, kwargs: Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let indent: Option<Value> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let separators: Option<Value> = kwargs.get("separators")?;
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_string(),
            None => " ".repeat(usize::try_from(v).map_err(|_| {
                minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be a number or a string",
                )
            })?),
        }),
    };
    let (item_sep, key_sep) = match separators {
        Some(s) if !s.is_none() => {
            let parts: Vec<String> = s
                .try_iter()?
                .map(|p| p.as_str().map(String::from))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be two strings",
                    )
                })?;
            match parts.as_slice() {
                [a, b] => (a.clone(), b.clone()),
                _ => {
                    return Err(minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be two strings",
                    ))
                }
            }
        }
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let json: serde_json::Value = serde_json::to_value(&value)
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    let mut out = String::new();
    let style = JsonStyle {
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys.unwrap_or(false),
    };
    // Keep the template's own key order (minijinja maps keep insertion order).
    write_py_json(&value, &json, &style, 0, &mut out);
    Ok(Value::from_safe_string(out))
}

struct JsonStyle {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

/// `json.dumps` of a template value: maps in their own order (or sorted), Python's
/// float repr for numbers that are not integers, non-ASCII written as is.
fn write_py_json(
    value: &Value,
    json: &serde_json::Value,
    s: &JsonStyle,
    depth: usize,
    out: &mut String,
) {
    let newline = |out: &mut String, depth: usize| {
        if let Some(ind) = &s.indent {
            out.push('\n');
            for _ in 0..depth {
                out.push_str(ind);
            }
        }
    };
    match json {
        serde_json::Value::Null => out.push_str("null"),
        serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        serde_json::Value::Number(n) => out.push_str(&py_number(n)),
        serde_json::Value::String(t) => out.push_str(&py_string(t)),
        serde_json::Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            let sub: Vec<Value> = value.try_iter().map(|i| i.collect()).unwrap_or_default();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&s.item_sep);
                }
                newline(out, depth + 1);
                let v = sub
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| Value::from_serialize(item));
                write_py_json(&v, item, s, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        serde_json::Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            // The key order of the template value (insertion order), else the map's.
            let mut keys: Vec<String> = value
                .try_iter()
                .map(|i| i.filter_map(|k| k.as_str().map(String::from)).collect())
                .unwrap_or_default();
            if keys.len() != map.len() {
                keys = map.keys().cloned().collect();
            }
            if s.sort_keys {
                keys.sort();
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(&s.item_sep);
                }
                newline(out, depth + 1);
                out.push_str(&py_string(k));
                out.push_str(&s.key_sep);
                let sub = value.get_attr(k).unwrap_or_default();
                write_py_json(&sub, &map[k], s, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

/// A JSON string as Python's `json.dumps(..., ensure_ascii=False)` writes it.
fn py_string(t: &str) -> String {
    let mut out = String::with_capacity(t.len() + 2);
    out.push('"');
    for c in t.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A number as Python writes it: integers as they are, floats by `repr`.
fn py_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let x = n.as_f64().unwrap_or(f64::NAN);
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if x == x.trunc() && x.abs() < 1e16 {
        return format!("{x:.1}");
    }
    // Rust's shortest round-trip digits, in Python's repr layout.
    let s = format!("{x:e}");
    let (mantissa, exp) = s.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    if (-5..16).contains(&exp) {
        format!("{x}")
    } else {
        let sign = if exp < 0 { "-" } else { "+" };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Python's `datetime.strftime` for the directives chat templates use, at `now` (UTC).
pub fn strftime(format: &str, now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // 1970-01-01 was a Thursday.
    let weekday = (days + 3).rem_euclid(7) as usize; // 0 = Monday
    let yday = days - days_from_civil(year, 1, 1) + 1;
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('e') => out.push_str(&format!("{day:>2}")),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('B') => out.push_str(MONTHS[month as usize - 1]),
            Some('b') | Some('h') => out.push_str(&MONTHS[month as usize - 1][..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('w') => out.push_str(&((weekday + 1) % 7).to_string()),
            Some('u') => out.push_str(&(weekday + 1).to_string()),
            Some('H') => out.push_str(&format!("{hour:02}")),
            Some('I') => out.push_str(&format!("{:02}", (hour + 11) % 12 + 1)),
            Some('p') => out.push_str(if hour < 12 { "AM" } else { "PM" }),
            Some('M') => out.push_str(&format!("{minute:02}")),
            Some('S') => out.push_str(&format!("{second:02}")),
            Some('F') => out.push_str(&format!("{year}-{month:02}-{day:02}")),
            Some('T') => out.push_str(&format!("{hour:02}:{minute:02}:{second:02}")),
            Some('z') => out.push_str("+0000"),
            Some('Z') => out.push_str("UTC"),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A time from an ISO date-time `YYYY-MM-DDTHH:MM:SS` (UTC), as the fixtures record
/// the clock their references were rendered at.
pub fn parse_iso_time(s: &str) -> Option<SystemTime> {
    let (date, time) = s.split_once('T').unwrap_or((s, "00:00:00"));
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let ([y, mo, da], [h, mi, se]) = (d.as_slice(), t.as_slice()) else {
        return None;
    };
    if !(1..=12).contains(mo) || !(1..=31).contains(da) {
        return None;
    }
    let days = days_from_civil(*y, *mo as u32, *da as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    Some(UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, messages: &[ChatMessage], gen: bool) -> Result<String> {
        ChatTemplate::new(source).render(
            messages,
            gen,
            false,
            &[("bos_token".into(), "<s>".into())],
            parse_iso_time("2026-11-30T12:34:56").unwrap(),
        )
    }

    #[test]
    fn clock_and_strftime() {
        let t = parse_iso_time("2024-02-29T23:05:09").unwrap();
        assert_eq!(strftime("%d %b %Y", t), "29 Feb 2024");
        assert_eq!(
            strftime("%A %B %j %H:%M:%S %y %%", t),
            "Thursday February 060 23:05:09 24 %"
        );
        assert_eq!(
            strftime("%F %I%p", parse_iso_time("1999-12-31T00:00:00").unwrap()),
            "1999-12-31 12AM"
        );
    }

    #[test]
    fn python_json() {
        let msgs = [ChatMessage::user("é \"q\"")];
        let src = "{{ messages[0] | tojson }}|{{ {'b': [1, 2.5, none, true]} | tojson(indent=2) }}";
        assert_eq!(
            render(src, &msgs, false).unwrap(),
            "{\"role\": \"user\", \"content\": \"é \\\"q\\\"\"}|{\n  \"b\": [\n    1,\n    2.5,\n    null,\n    true\n  ]\n}"
        );
        assert_eq!(
            py_number(&serde_json::Number::from_f64(1e-7).unwrap()),
            "1e-07"
        );
        assert_eq!(
            py_number(&serde_json::Number::from_f64(3.0).unwrap()),
            "3.0"
        );
    }

    #[test]
    fn python_methods_namespace_and_raise() {
        let msgs = [
            ChatMessage::user("  a</think>\nb  "),
            ChatMessage::assistant("x"),
        ];
        let src = "{%- set ns = namespace(n=0) %}{%- for m in messages %}{%- set ns.n = ns.n + 1 %}{{ m.content.split('</think>')[-1].lstrip('\\n').strip() }}{% if m.role.startswith('ass') %}!{% endif %}{%- endfor %}{{ ns.n }}";
        assert_eq!(render(src, &msgs, false).unwrap(), "bx!2");
        let e = render("{{ raise_exception('No system role') }}", &msgs, false).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("the chat template refuses this conversation: No system role"),
            "{e}"
        );
        let e = render("{% for %}", &msgs, false).unwrap_err();
        assert!(
            e.to_string()
                .contains("the chat template (the given template) failed"),
            "{e}"
        );
    }

    #[test]
    fn continuing_the_final_message() {
        let msgs = [
            ChatMessage::user("Hi"),
            ChatMessage::assistant("The answer is "),
        ];
        let src = "{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}</{{ m.role }}>{% endfor %}";
        let t = ChatTemplate::new(src);
        let out = t
            .render(&msgs, false, true, &[], SystemTime::UNIX_EPOCH)
            .unwrap();
        // `| trim` ate the tag's space: the cut is at the tag, then right-trimmed.
        assert_eq!(out, "<user>Hi</user><assistant>The answer is");
        assert!(t
            .render(&[], true, false, &[], SystemTime::UNIX_EPOCH)
            .is_err());
    }
}
