//! `model_types.json` against its schema, the runtime's families and the types
//! build.rs generated from it.

use skillset_codegen::{parse_metadata, validate, Family, Metadata, Task};
use skillsets::{
    lookup, task, BackendStatus, Modality, ModelTypeInfo, Scope, Skillset, Supports, FAMILIES,
    MODEL_TYPES, MODEL_TYPES_JSON,
};

fn meta() -> Metadata {
    parse_metadata(MODEL_TYPES_JSON, "model_types.json").expect("model_types.json is valid")
}

#[test]
fn has_every_model_type_of_transformers_5() {
    let meta = meta();
    assert!(
        meta.transformers_version.starts_with("5."),
        "{}",
        meta.transformers_version
    );
    assert!(
        meta.model_types.len() >= 800,
        "only {} model types",
        meta.model_types.len()
    );
    for name in [
        "bert",
        "roberta",
        "xlm-roberta",
        "llama",
        "mistral",
        "qwen2",
        "gpt2",
        "t5",
        "vit",
        "clip",
        "whisper",
        "wav2vec2",
        "llava",
    ] {
        assert!(meta.model_type(name).is_some(), "`{name}` is missing");
    }
    assert!(validate(&meta).is_empty());
}

#[test]
fn every_family_in_the_file_is_a_runtime_family() {
    let meta = meta();
    let named: Vec<Family> = meta.model_types.iter().filter_map(|e| e.family).collect();
    assert!(!named.is_empty());
    for f in &named {
        // Family is the enum the runtime dispatches on exhaustively, and FAMILIES is
        // what build.rs generated from the file: both must know it.
        assert!(Family::ALL.contains(f));
        assert!(
            FAMILIES.iter().any(|i| i.family == *f),
            "{f} has no FamilyInfo"
        );
    }
    assert_eq!(meta.families.len(), Family::ALL.len());
    // Every family runs at least the model types its own name says.
    for f in Family::ALL {
        assert!(
            meta.family_members(*f).count() > 0,
            "family {f} runs no model type"
        );
    }
}

#[test]
fn generated_table_matches_the_file() {
    let meta = meta();
    assert_eq!(MODEL_TYPES.len(), meta.model_types.len());
    assert!(
        MODEL_TYPES
            .windows(2)
            .all(|w| w[0].model_type < w[1].model_type),
        "sorted for lookup"
    );
    for (info, entry) in MODEL_TYPES.iter().zip(&meta.model_types) {
        assert_eq!(info.model_type, entry.model_type);
        assert_eq!(info.config_class, entry.config_class);
        assert_eq!(info.family, entry.family);
        assert_eq!(info.tasks, entry.skillset_tasks.as_slice());
        assert_eq!(info.hf_tasks.len(), entry.tasks.len());
        assert_eq!(info.transformers_version, meta.transformers_version);
        for (task, arch) in entry.tasks.iter() {
            assert_eq!(info.architecture(*task), Some(arch.as_str()));
        }
        assert_eq!(
            lookup(&entry.model_type).map(|i| i.model_type),
            Some(info.model_type)
        );
        if entry.family.is_none() {
            assert!(info
                .backends
                .iter()
                .all(|(_, s)| *s == BackendStatus::Unsupported));
        }
    }
    assert!(lookup("not-a-model").is_none());
}

fn scope_info<S: Skillset>() -> &'static ModelTypeInfo {
    match S::SCOPE {
        Scope::ModelType(i) => i,
        Scope::Family(_) => panic!("a generated type is a model type"),
    }
}

fn runs<S: Supports<T>, T: skillsets::runtime::TaskType>() {}

#[test]
fn generated_types_carry_their_metadata() {
    let bert = scope_info::<skillsets::Bert>();
    assert_eq!(bert.model_type, "bert");
    assert_eq!(bert.config_class, "BertConfig");
    assert_eq!(bert.modality, Modality::Text);
    assert_eq!(bert.family, Some(Family::Bert));
    assert!(bert.runs(Task::FillMask));
    assert_eq!(bert.architecture(Task::FillMask), Some("BertForMaskedLM"));
    assert_eq!(
        scope_info::<skillsets::XlmRoberta>().model_type,
        "xlm-roberta"
    );
    assert_eq!(
        scope_info::<skillsets::Qwen2_5Vl>().model_type,
        "qwen2_5_vl"
    );
    let llama = scope_info::<skillsets::Llama>();
    assert_eq!(
        llama.architecture(Task::TextGeneration),
        Some("LlamaForCausalLM")
    );
    // Compile-time: these type-check only if the marker impls were generated.
    runs::<skillsets::Bert, task::FillMask>();
    runs::<skillsets::Roberta, task::TokenClassification>();
    runs::<skillsets::XlmRoberta, task::TextClassification>();
    runs::<skillsets::Camembert, task::FeatureExtraction>();
    assert!(std::ptr::eq(bert, &skillsets::info::BERT));
}

#[test]
fn task_markers_cover_every_task() {
    let names = skillsets::runtime::task::MARKER_NAMES;
    assert_eq!(names.len(), Task::ALL.len());
    for t in Task::ALL {
        assert!(names.contains(&t.rust_name()), "no marker type for {t}");
    }
    // And the task table of the file lists exactly the enum's tasks.
    let meta = meta();
    let mut file: Vec<Task> = meta.tasks.iter().map(|t| t.name).collect();
    file.sort();
    let mut all = Task::ALL.to_vec();
    all.sort();
    assert_eq!(file, all);
}

#[test]
fn modalities_are_spread_over_the_file() {
    let meta = meta();
    for m in [
        Modality::Text,
        Modality::Vision,
        Modality::Audio,
        Modality::Multimodal,
    ] {
        let n = meta.model_types.iter().filter(|e| e.modality == m).count();
        assert!(n >= 20, "only {n} {m} model types");
    }
    assert_eq!(meta.model_type("vit").unwrap().modality, Modality::Vision);
    assert_eq!(
        meta.model_type("whisper").unwrap().modality,
        Modality::Audio
    );
    assert_eq!(
        meta.model_type("clip").unwrap().modality,
        Modality::Multimodal
    );
    assert_eq!(
        meta.model_type("llava").unwrap().modality,
        Modality::Multimodal
    );
}

#[test]
fn a_corrupted_file_names_entry_and_field() {
    let text = MODEL_TYPES_JSON.replacen("\"family\": \"bert\"", "\"family\": \"bret\"", 1);
    let err = parse_metadata(&text, "model_types.json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("model_types["), "{err}");
    assert!(
        err.contains("field `family`: unknown family `bret`; did you mean `bert`?"),
        "{err}"
    );

    // A family whose runnable tasks disagree with its table.
    let text = MODEL_TYPES_JSON.replacen(
        "\"skillset_tasks\": [\n    \"feature-extraction\",",
        "\"skillset_tasks\": [",
        1,
    );
    assert_ne!(text, MODEL_TYPES_JSON);
    let err = parse_metadata(&text, "model_types.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("field `skillset_tasks`: misses `feature-extraction`"),
        "{err}"
    );
}

/// model_types.json's families are the registry's (scripts/gen_model_types.py reads
/// them from `skillset --registry`), and each model type's family and skillset tasks
/// follow from the registry: a member's base class is listed, and a task is a
/// skillset task exactly when the family lists the class transformers uses for it.
#[test]
fn model_types_json_agrees_with_the_registry() {
    let meta = meta();
    let rerun = "differs from skillset-codegen/src/registry.rs: rerun scripts/gen_model_types.py";
    let registry = skillset_codegen::registry::FAMILIES;
    assert_eq!(
        meta.families.len(),
        registry.len(),
        "the family list {rerun}"
    );
    for (entry, spec) in meta.families.iter().zip(registry) {
        let name = spec.family;
        assert_eq!(entry.name, name, "the family order {rerun}");
        assert_eq!(
            entry.description, spec.description,
            "{name}'s description {rerun}"
        );
        assert_eq!(entry.modality, spec.modality, "{name}'s modality {rerun}");
        assert_eq!(
            entry.base_architectures, spec.base,
            "{name}'s base classes {rerun}"
        );
        let tasks: Vec<(Task, Vec<&str>)> = entry
            .tasks
            .iter()
            .map(|(t, a)| (*t, a.iter().map(String::as_str).collect()))
            .collect();
        let listed: Vec<(Task, Vec<&str>)> =
            spec.tasks.iter().map(|(t, a)| (*t, a.to_vec())).collect();
        assert_eq!(tasks, listed, "{name}'s tasks {rerun}");
    }
    for e in &meta.model_types {
        let Some(family) = e.family else {
            assert!(e.skillset_tasks.is_empty(), "{}", e.model_type);
            continue;
        };
        let spec = skillset_codegen::registry::family(family);
        for (task, class) in e.tasks.iter() {
            let listed = spec.architectures(*task).contains(&class.as_str());
            assert_eq!(
                listed,
                e.skillset_tasks.contains(task),
                "{}: {task} ({class})",
                e.model_type
            );
        }
    }
}
