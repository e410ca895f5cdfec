//! Reading and checking `model_types.json`: every problem is reported with the entry
//! (index and `model_type`) and the field it is in.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::names::{file_stem, rust_type_name, Family, Task};
use crate::schema::{BackendResults, Metadata, ModelTypeEntry, SCHEMA_VERSION};

/// One problem in a metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `model_types[17] (`bert`)`, `families[0] (`bert`)`, `tasks[3]` or `` (whole file).
    pub entry: String,
    /// The field inside the entry, e.g. `skillset_tasks`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.entry.is_empty(), self.field.is_empty()) {
            (true, true) => write!(f, "{}", self.message),
            (true, false) => write!(f, "field `{}`: {}", self.field, self.message),
            (false, true) => write!(f, "{}: {}", self.entry, self.message),
            (false, false) => write!(
                f,
                "{}, field `{}`: {}",
                self.entry, self.field, self.message
            ),
        }
    }
}

/// Why a metadata file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The file is not valid JSON or does not have the schema's shape.
    #[error("{source_name}: {problem}")]
    Malformed {
        source_name: String,
        problem: Problem,
    },
    /// The file parses but is inconsistent; every problem found is listed.
    #[error("{source_name}: {} problem{}:\n{}", problems.len(), if problems.len() == 1 { "" } else { "s" },
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        source_name: String,
        problems: Vec<Problem>,
    },
}

impl MetadataError {
    /// Every problem, one per line, for callers that report them separately.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            MetadataError::Malformed { problem, .. } => vec![problem.clone()],
            MetadataError::Invalid { problems, .. } => problems.clone(),
        }
    }
}

/// Parse and validate `model_types.json` text. `source_name` names it in errors.
pub fn parse_metadata(text: &str, source_name: &str) -> Result<Metadata, MetadataError> {
    let meta: Metadata = parse_json(text, source_name)?;
    let problems = validate(&meta);
    if problems.is_empty() {
        Ok(meta)
    } else {
        Err(MetadataError::Invalid {
            source_name: source_name.to_string(),
            problems,
        })
    }
}

/// Parse a backend results file (`skillset --run-tests` output).
pub fn parse_results(text: &str, source_name: &str) -> Result<BackendResults, MetadataError> {
    let results: BackendResults = parse_json(text, source_name)?;
    if results.schema_version != SCHEMA_VERSION {
        return Err(MetadataError::Invalid {
            source_name: source_name.to_string(),
            problems: vec![Problem {
                entry: String::new(),
                field: "schema_version".into(),
                message: format!(
                    "is {}, this build reads {SCHEMA_VERSION}",
                    results.schema_version
                ),
            }],
        });
    }
    Ok(results)
}

fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    source_name: &str,
) -> Result<T, MetadataError> {
    let trimmed = text.trim_start();
    if !trimmed.is_empty() && !trimmed.starts_with('{') {
        return Err(MetadataError::Malformed {
            source_name: source_name.to_string(),
            problem: Problem {
                entry: String::new(),
                field: String::new(),
                message: "the top level is not a JSON object".into(),
            },
        });
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let (path, inner) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => match de.end() {
            Ok(()) => return Ok(v),
            Err(e) => (String::new(), e),
        },
        Err(e) => (e.path().to_string(), e.into_inner()),
    };
    let syntax = inner.is_syntax() || inner.is_eof();
    // A syntax error is about the text, not about the entry the parser was in.
    let (entry, field) = if syntax {
        (String::new(), String::new())
    } else {
        split_path(&path, text)
    };
    let message = if syntax {
        format!("not valid JSON: {inner}")
    } else {
        // serde_json appends " at line L column C"; keep it, it points into the file.
        inner.to_string()
    };
    Err(MetadataError::Malformed {
        source_name: source_name.to_string(),
        problem: Problem {
            entry,
            field,
            message,
        },
    })
}

/// `model_types[17].tasks.fill-mask` -> (`model_types[17] (`bert`)`, `tasks.fill-mask`).
fn split_path(path: &str, text: &str) -> (String, String) {
    if matches!(path, "." | "?" | "") {
        return (String::new(), String::new());
    }
    let Some(open) = path.find('[') else {
        return (String::new(), path.to_string());
    };
    let Some(close) = path[open..].find(']').map(|c| c + open) else {
        return (String::new(), path.to_string());
    };
    let list = &path[..open];
    let index: Option<usize> = path[open + 1..close].parse().ok();
    let field = path[close + 1..].trim_start_matches('.').to_string();
    let mut entry = path[..=close].to_string();
    // Name the entry by its `model_type`/`name` when the file is JSON enough to say.
    if let (Some(index), Ok(value)) = (index, serde_json::from_str::<serde_json::Value>(text)) {
        let key = if list == "model_types" {
            "model_type"
        } else {
            "name"
        };
        if let Some(name) = value
            .get(list)
            .and_then(|l| l.get(index))
            .and_then(|e| e.get(key))
            .and_then(|n| n.as_str())
        {
            entry = format!("{entry} (`{name}`)");
        }
    }
    (entry, field)
}

/// Every consistency problem of a parsed metadata file (empty when it is sound).
pub fn validate(meta: &Metadata) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut push = |entry: &str, field: &str, message: String| {
        problems.push(Problem {
            entry: entry.to_string(),
            field: field.to_string(),
            message,
        })
    };

    if meta.schema_version != SCHEMA_VERSION {
        push(
            "",
            "schema_version",
            format!(
                "is {}, this build reads {SCHEMA_VERSION}",
                meta.schema_version
            ),
        );
    }
    if meta.transformers_version.trim().is_empty() {
        push("", "transformers_version", "is empty".into());
    }

    // Tasks: each once.
    let mut task_autos: HashMap<Task, &[String]> = HashMap::new();
    for (i, task) in meta.tasks.iter().enumerate() {
        let at = format!("tasks[{i}] (`{}`)", task.name);
        if task_autos
            .insert(task.name, task.auto_classes.as_slice())
            .is_some()
        {
            push(&at, "name", format!("task `{}` is listed twice", task.name));
        }
        if task.auto_classes.is_empty() {
            push(&at, "auto_classes", "is empty".into());
        }
    }

    // Families: exactly the runtime's.
    let mut seen_families = HashSet::new();
    for (i, fam) in meta.families.iter().enumerate() {
        let at = format!("families[{i}] (`{}`)", fam.name);
        if !seen_families.insert(fam.name) {
            push(
                &at,
                "name",
                format!("family `{}` is listed twice", fam.name),
            );
        }
        if fam.base_architectures.is_empty() {
            push(&at, "base_architectures", "is empty".into());
        }
        if fam.tasks.is_empty() {
            push(
                &at,
                "tasks",
                "is empty: a family runs at least one task".into(),
            );
        }
        for (task, archs) in fam.tasks.iter() {
            if !task_autos.contains_key(task) {
                push(
                    &at,
                    &format!("tasks.{task}"),
                    format!("task `{task}` is not in the file's task table"),
                );
            }
            if archs.is_empty() {
                push(
                    &at,
                    &format!("tasks.{task}"),
                    "lists no architecture".into(),
                );
            }
        }
    }
    for family in Family::ALL {
        if !seen_families.contains(family) {
            push(
                "",
                "families",
                format!("runtime family `{family}` is missing from the file"),
            );
        }
    }

    if meta.model_types.is_empty() {
        push("", "model_types", "is empty".into());
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut idents: HashMap<String, &str> = HashMap::new();
    let mut stems: HashMap<String, &str> = HashMap::new();
    for (i, e) in meta.model_types.iter().enumerate() {
        let at = format!("model_types[{i}] (`{}`)", e.model_type);
        if let Some(first) = names.insert(&e.model_type, i) {
            push(
                &at,
                "model_type",
                format!("duplicate of model_types[{first}]"),
            );
        }
        check_model_type_name(&e.model_type, |m| push(&at, "model_type", m));
        if let Some(other) = idents.insert(rust_type_name(&e.model_type), &e.model_type) {
            push(
                &at,
                "model_type",
                format!(
                    "Rust type name `{}` is also `{other}`'s",
                    rust_type_name(&e.model_type)
                ),
            );
        }
        if let Some(other) = stems.insert(file_stem(&e.model_type), &e.model_type) {
            push(
                &at,
                "model_type",
                format!(
                    "file name `{}.rs` is also `{other}`'s",
                    file_stem(&e.model_type)
                ),
            );
        }
        for (field, value) in [
            ("config_class", &e.config_class),
            ("display_name", &e.display_name),
        ] {
            if value.trim().is_empty() {
                push(&at, field, "is empty".into());
            }
        }
        check_entry(meta, e, &task_autos, &mut |field, m| push(&at, field, m));
    }
    problems
}

fn check_model_type_name(name: &str, mut report: impl FnMut(String)) {
    if name.is_empty() {
        report("is empty".into());
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        report(format!(
            "`{name}` has characters other than ASCII letters, digits, `-`, `_` and `.`"
        ));
    }
}

fn check_entry(
    meta: &Metadata,
    e: &ModelTypeEntry,
    task_autos: &HashMap<Task, &[String]>,
    report: &mut impl FnMut(&str, String),
) {
    for (auto, classes) in e.architectures.iter() {
        if classes.is_empty() {
            report(&format!("architectures.{auto}"), "lists no class".into());
        }
    }
    for (task, arch) in e.tasks.iter() {
        let field = format!("tasks.{task}");
        let Some(autos) = task_autos.get(task) else {
            report(
                &field,
                format!("task `{task}` is not in the file's task table"),
            );
            continue;
        };
        let known = autos.iter().any(|auto| {
            e.architectures
                .get(auto)
                .is_some_and(|classes| classes.first() == Some(arch))
        });
        if !known {
            report(
                &field,
                format!(
                    "architecture `{arch}` is not what the task's auto classes ({}) map this model type to",
                    autos.join(", ")
                ),
            );
        }
    }

    let family = match e.family {
        None => {
            if !e.skillset_tasks.is_empty() {
                report(
                    "skillset_tasks",
                    "lists tasks but `family` is null: no runtime can run them".into(),
                );
            }
            return;
        }
        Some(f) => f,
    };
    let Some(fam) = meta.family(family) else {
        report(
            "family",
            format!("family `{family}` is not in the file's family table"),
        );
        return;
    };
    let base = e.architectures.get(&"AutoModel".to_string());
    let in_family = base.is_some_and(|classes| {
        classes
            .iter()
            .any(|c| fam.base_architectures.iter().any(|b| b == c))
    });
    if !in_family {
        report(
            "family",
            format!(
                "base architecture {} is not one of family `{family}`'s ({})",
                base.map(|c| format!("`{}`", c.join("`, `")))
                    .unwrap_or_else(|| "(none)".into()),
                fam.base_architectures.join(", ")
            ),
        );
    }
    let mut seen = HashSet::new();
    for task in &e.skillset_tasks {
        if !seen.insert(*task) {
            report("skillset_tasks", format!("`{task}` is listed twice"));
        }
        let Some(arch) = e.tasks.get(task) else {
            report(
                "skillset_tasks",
                format!("`{task}` is not one of the model type's `tasks`"),
            );
            continue;
        };
        match fam.tasks.get(task) {
            None => report(
                "skillset_tasks",
                format!("family `{family}` does not run `{task}`"),
            ),
            Some(archs) if !archs.contains(arch) => report(
                "skillset_tasks",
                format!("family `{family}` cannot load `{arch}` for `{task}`"),
            ),
            Some(_) => {}
        }
    }
    // And the other way: a task the family can run must be listed.
    for (task, arch) in e.tasks.iter() {
        let runnable = fam.tasks.get(task).is_some_and(|a| a.contains(arch));
        if runnable && !e.skillset_tasks.contains(task) {
            report(
                "skillset_tasks",
                format!("misses `{task}`, which family `{family}` runs with `{arch}`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        // Every runtime family must be in the file: bert for real, the others as stubs.
        let others: String = Family::ALL
            .iter()
            .filter(|f| **f != Family::Bert)
            .map(|f| {
                format!(
                    r#",
  {{"name": "{f}", "description": "d", "modality": "text", "base_architectures": ["Stub{f}"],
   "tasks": {{"feature-extraction": ["Stub{f}"]}}}}"#
                )
            })
            .collect();
        SAMPLE.replace("__OTHER_FAMILIES__", &others)
    }

    const SAMPLE: &str = r#"{
 "schema_version": 1,
 "transformers_version": "5.0.0",
 "generated_by": "test",
 "tasks": [
  {"name": "feature-extraction", "pipeline": true, "auto_classes": ["AutoModel"]},
  {"name": "fill-mask", "pipeline": true, "auto_classes": ["AutoModelForMaskedLM"]}
 ],
 "families": [
  {"name": "bert", "description": "d", "modality": "text", "base_architectures": ["BertModel"],
   "tasks": {"feature-extraction": ["BertModel"], "fill-mask": ["BertForMaskedLM"]}}__OTHER_FAMILIES__
 ],
 "model_types": [
  {"model_type": "bert", "config_class": "BertConfig", "display_name": "Bert", "modality": "text",
   "family": "bert",
   "architectures": {"AutoModel": ["BertModel"], "AutoModelForMaskedLM": ["BertForMaskedLM"]},
   "tasks": {"feature-extraction": "BertModel", "fill-mask": "BertForMaskedLM"},
   "skillset_tasks": ["feature-extraction", "fill-mask"]},
  {"model_type": "gpt2", "config_class": "GPT2Config", "display_name": "GPT2", "modality": "text",
   "family": null, "architectures": {"AutoModel": ["GPT2Model"]},
   "tasks": {"feature-extraction": "GPT2Model"}, "skillset_tasks": []}
 ]
}"#;

    #[test]
    fn sample_is_valid() {
        let meta = parse_metadata(&sample(), "sample").unwrap();
        assert_eq!(meta.model_types.len(), 2);
    }

    #[test]
    fn unknown_family_names_entry_and_field() {
        let text = sample().replace(r#""family": "bert""#, r#""family": "bret""#);
        let err = parse_metadata(&text, "sample").unwrap_err().to_string();
        assert!(
            err.contains("model_types[0] (`bert`), field `family`: unknown family `bret`; did you mean `bert`?"),
            "{err}"
        );
    }

    #[test]
    fn inconsistent_tasks_are_all_reported() {
        let text = sample()
            .replace(
                r#""skillset_tasks": ["feature-extraction", "fill-mask"]"#,
                r#""skillset_tasks": ["feature-extraction"]"#,
            )
            .replace(
                r#""family": null, "architectures""#,
                r#""family": "bert", "architectures""#,
            );
        let err = parse_metadata(&text, "sample").unwrap_err();
        let problems = err.problems();
        assert_eq!(problems.len(), 2, "{err}");
        assert!(problems[0]
            .to_string()
            .contains("model_types[0] (`bert`), field `skillset_tasks`: misses `fill-mask`"));
        assert!(problems[1].to_string().contains("model_types[1] (`gpt2`), field `family`: base architecture `GPT2Model` is not one of family `bert`'s"));
    }

    #[test]
    fn duplicate_keys_and_bad_json() {
        let text = sample().replace(
            r#""tasks": {"feature-extraction": "BertModel","#,
            r#""tasks": {"feature-extraction": "BertModel", "feature-extraction": "BertModel","#,
        );
        let err = parse_metadata(&text, "sample").unwrap_err().to_string();
        assert!(
            err.contains("field `tasks`: duplicate key `feature-extraction`"),
            "{err}"
        );
        let err = parse_metadata("{\"schema_version\": 1,", "x.json")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.json: not valid JSON"), "{err}");
        let err = parse_metadata("[]", "x.json").unwrap_err().to_string();
        assert_eq!(err, "x.json: the top level is not a JSON object");
    }

    #[test]
    fn missing_field_and_unknown_field() {
        let text = sample().replace(r#""config_class": "GPT2Config", "#, "");
        let err = parse_metadata(&text, "s").unwrap_err().to_string();
        assert!(err.contains("model_types[1] (`gpt2`)"), "{err}");
        assert!(err.contains("missing field `config_class`"), "{err}");
        let text = sample().replace(
            r#""display_name": "GPT2","#,
            r#""display_name": "GPT2", "colour": 1,"#,
        );
        let err = parse_metadata(&text, "s").unwrap_err().to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn duplicate_model_types_and_name_collisions() {
        let text = sample().replace(r#""model_type": "gpt2""#, r#""model_type": "Bert""#);
        let err = parse_metadata(&text, "s").unwrap_err().to_string();
        assert!(
            err.contains("Rust type name `Bert` is also `bert`'s"),
            "{err}"
        );
    }
}
