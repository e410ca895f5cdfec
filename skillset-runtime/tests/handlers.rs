//! A pipeline holds only its task's handler: its parts (tokenizer, labels, image
//! processor, feature extractor) answer for that task alone, and a task method of
//! another task is one typed error naming both tasks.

use skillset_runtime::{skillset, Error, LoadOptions, Pipeline, Skillset, Task, TopK};

#[skillset(family = "bert")]
struct AnyBert;
#[skillset(family = "vit")]
struct AnyVit;
#[skillset(family = "whisper")]
struct AnyWhisper;

fn load<S: Skillset>(dir: &str, task: Task) -> Pipeline {
    let dir = std::path::Path::new("../tests/fixtures").join(dir);
    Pipeline::load_for_scope(S::SCOPE, &dir, task, &LoadOptions::default()).unwrap()
}

#[test]
fn a_pipeline_has_its_tasks_handler_only() {
    let fill = load::<AnyBert>("bert-tiny-mlm", Task::FillMask);
    assert!(fill.tokenizer().is_some_and(|t| t.mask.is_some()));
    assert!(fill.labels().is_empty());
    assert!(fill.image_processor().is_none() && fill.audio_front_end().is_none());
    let err = fill.text_classification(&["x"], TopK::All).unwrap_err();
    assert!(matches!(err, Error::InvalidOption(_)));
    let msg = err.to_string();
    assert!(
        msg.contains("`fill-mask`") && msg.contains("`text-classification`"),
        "{msg}"
    );
    assert_eq!(
        fill.fill_mask(&["Paris is the [MASK]."], 3).unwrap()[0][0].len(),
        3
    );

    let cls = load::<AnyBert>("bert-tiny-cls", Task::TextClassification);
    assert!(!cls.labels().is_empty());
    assert!(cls.fill_mask(&["[MASK]"], 3).is_err());
    assert!(cls.chat_template().is_none());

    let vit = load::<AnyVit>("vit-tiny-cls", Task::ImageClassification);
    assert!(vit.tokenizer().is_none() && vit.image_processor().is_some());
    assert!(vit.input_ids(&["text"]).is_err());
    assert!(vit.audio_front_end().is_none());
    assert!(!vit.labels().is_empty());

    let whisper = load::<AnyWhisper>("whisper-tiny", Task::AutomaticSpeechRecognition);
    assert!(whisper.tokenizer().is_some() && whisper.audio_front_end().is_some());
    assert!(whisper.labels().is_empty());
    assert!(whisper.image_classification(&[], TopK::All).is_err());
}
