//! `#[skillset(model_type = ...)]` and the generated types give the same API.
use skillset_runtime::task::FillMask;
use skillset_runtime::{skillset, Modality, Scope, Skillset};

#[skillset(model_type = "xlm-roberta")]
struct MyXlmr;

fn info<S: Skillset>() -> &'static skillset_runtime::ModelTypeInfo {
    match S::SCOPE {
        Scope::ModelType(i) => i,
        Scope::Family(_) => unreachable!(),
    }
}

fn main() {
    let mine = info::<MyXlmr>();
    let generated = info::<skillsets::XlmRoberta>();
    assert_eq!(mine.model_type, "xlm-roberta");
    assert_eq!(mine.tasks, generated.tasks);
    assert_eq!(mine.hf_tasks, generated.hf_tasks);
    assert_eq!(mine.modality, Modality::Text);
    let err = MyXlmr::init_cpu::<FillMask>("/no/such/checkpoint").unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}
