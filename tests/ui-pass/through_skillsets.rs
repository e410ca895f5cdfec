//! A crate that depends only on `skillsets` (not on skillset-runtime) uses the macro
//! through it: `crate = skillsets::runtime` makes the expansion name the runtime by that
//! path. Backend statuses are those build.rs gives `skillsets::Bert`.
use skillsets::task::FillMask;
use skillsets::{Backend, BackendStatus, Family, Scope, Skillset};

#[skillsets::skillset(family = "bert", crate = skillsets::runtime)]
pub struct MyBert;

#[skillsets::skillset(model_type = "bert", crate = "skillsets::runtime")]
pub struct JustBert;

fn main() {
    match MyBert::SCOPE {
        Scope::Family(f) => assert_eq!(f.family, Family::Bert),
        Scope::ModelType(_) => panic!("family scope expected"),
    }
    let Scope::ModelType(info) = JustBert::SCOPE else {
        panic!("model type scope expected")
    };
    // The macro reads the backend results build.rs reads: the same statuses.
    let built = skillsets::lookup("bert").unwrap();
    assert_eq!(info.backends, built.backends);
    assert!(info
        .backends
        .contains(&(Backend::Cpu, BackendStatus::Verified)));
    assert!(MyBert::init_cpu::<FillMask>("/no/such/checkpoint").is_err());
}
