//! `#[skillset(family = ...)]` gives a user's struct the typed API of the family.
use skillset_runtime::task::{FeatureExtraction, FillMask, TextClassification, TokenClassification};
use skillset_runtime::{skillset, Error, Family, Scope, Skillset, Task};

#[skillset(family = "bert")]
pub struct MyBert;

fn main() {
    match MyBert::SCOPE {
        Scope::Family(f) => {
            assert_eq!(f.family, Family::Bert);
            assert!(f.model_types.contains(&"roberta"));
            assert!(f.tasks.contains(&Task::FillMask));
        }
        Scope::ModelType(_) => panic!("family scope expected"),
    }
    // Every task of the family type-checks; a missing checkpoint is a typed error.
    let err = MyBert::init_cpu::<FillMask>("/no/such/checkpoint").unwrap_err();
    assert!(matches!(err, Error::MissingFile { .. }), "{err}");
    assert!(MyBert::init_cpu::<FeatureExtraction>("/no/such/checkpoint").is_err());
    assert!(MyBert::init_cpu::<TextClassification>("/no/such/checkpoint").is_err());
    assert!(MyBert::init_cpu::<TokenClassification>("/no/such/checkpoint").is_err());
}
