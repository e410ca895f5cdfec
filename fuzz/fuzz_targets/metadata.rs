//! Fuzz the metadata parser, the validator, the generator and the generated-file
//! checker: arbitrary bytes must give a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(meta) = skillset_codegen::parse_metadata(text, "fuzz.json") {
        // A file that validates must generate and check cleanly.
        let results = skillset_codegen::BackendResults::new();
        let _ = skillset_codegen::generate::registry(&meta, &results);
        for entry in meta.model_types.iter().take(4) {
            let file = skillset_codegen::generate::model_type_file(&meta, entry, &results);
            skillset_codegen::check::check_file(&file, entry).expect("generated files pass the checker");
        }
    }
    let _ = skillset_codegen::parse_results(text, "fuzz-results.json");
    // The checker takes any text as a generated file.
    let meta_entry = skillset_codegen::ModelTypeEntry {
        model_type: "bert".into(),
        config_class: "BertConfig".into(),
        display_name: "Bert".into(),
        modality: skillset_codegen::Modality::Text,
        family: None,
        architectures: Default::default(),
        tasks: Default::default(),
        skillset_tasks: vec![],
    };
    let _ = skillset_codegen::check::check_file(text, &meta_entry);
});
