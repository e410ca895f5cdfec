#!/usr/bin/env python3
"""Generate `model_types.json` from the installed `transformers` package.

Everything in the output is read from transformers' own tables:

* `CONFIG_MAPPING_NAMES`: every model type and its configuration class;
* the `MODEL_*_MAPPING_NAMES` tables of `transformers.models.auto.modeling_auto`:
  the architecture class of a model type for each auto class;
* `transformers.pipelines.SUPPORTED_TASKS`: the pipeline tasks and the auto classes
  each pipeline loads.

The skillset *families* (which architecture classes each runtime implementation can
run: that is ours, not transformers') come from the runtime's registry
(`skillset-codegen/src/registry.rs`), printed by `skillset --registry`. The only
hand-written knowledge here is the two transformers 4.x tasks that no longer have a
pipeline in 5.x (`text2text-generation`, `question-answering`) and the rules that turn
the mapping tables into a modality.

Usage:
    pip install torch transformers      # the pipeline table is only filled when torch imports
    python scripts/gen_model_types.py [--output model_types.json] [--check] [--registry FILE]

Without `--registry` the script runs `cargo run --release -- --registry`.

Running it twice on the same transformers version writes byte-identical files;
`--check` exits 1 when the file on disk differs from what would be written.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

SCHEMA_VERSION = 1

ROOT = Path(__file__).resolve().parent.parent


def load_families(registry: "str | None") -> "OrderedDict[str, dict]":
    """The skillset families from the runtime's registry (`skillset --registry`).

    A model type belongs to a family when its base architecture (the class `AutoModel`
    loads) is in `base`; it can run a task when the class transformers uses for that
    task is in the family's list for the task.
    """
    if registry:
        text = Path(registry).read_text()
    else:
        text = subprocess.run(
            ["cargo", "run", "--quiet", "--release", "--", "--registry"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    return OrderedDict(
        (
            f["name"],
            {
                "description": f["description"],
                "modality": f["modality"],
                "base": f["base_architectures"],
                "tasks": OrderedDict((t["task"], t["architectures"]) for t in f["tasks"]),
            },
        )
        for f in json.loads(text)["families"]
    )


# Tasks that transformers 4.x had pipelines for and 5.x only keeps as auto classes.
LEGACY_TASKS = OrderedDict(
    [
        ("text2text-generation", ["AutoModelForSeq2SeqLM"]),
        ("question-answering", ["AutoModelForQuestionAnswering"]),
    ]
)

# Pipeline tasks that load the bare `AutoModel`: every model type is in that table,
# so the modality decides which of them apply (as on the Hub, where a text model's
# pipeline tag is feature-extraction and a vision model's image-feature-extraction).
AUTO_MODEL_TASK_MODALITIES = {
    "feature-extraction": {"text"},
    "image-feature-extraction": {"vision"},
    "zero-shot-audio-classification": {"audio-text"},
}

# Tables of models that generate: their bare AutoModel is not a contrastive encoder.
GENERATIVE_TABLES = [
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
    "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",
    "MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES",
    "MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES",
    "MODEL_FOR_TEXT_TO_SPECTROGRAM_MAPPING_NAMES",
]

# `base_config_key` of a sub-model's configuration -> modality, first match wins.
BASE_CONFIG_KEY_MODALITIES = [
    ("multimodal", ["audio_video", "multimodal"]),
    ("audio", ["audio", "speech", "asr", "vocoder"]),
    ("vision", ["vision", "image", "backbone", "sam_config", "vq_config", "mask_decoder", "prompt_encoder"]),
    ("text", ["text"]),
]

# Mapping tables that say what a model type consumes, used for its modality.
MODALITY_TABLES = {
    "time-series": [
        "MODEL_FOR_TIME_SERIES_CLASSIFICATION_MAPPING_NAMES",
        "MODEL_FOR_TIME_SERIES_REGRESSION_MAPPING_NAMES",
        "MODEL_FOR_TIME_SERIES_PREDICTION_MAPPING_NAMES",
    ],
    "video": ["MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES"],
    "multimodal": [
        "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",
        "MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES",
        "MODEL_FOR_VISUAL_QUESTION_ANSWERING_MAPPING_NAMES",
        "MODEL_FOR_DOCUMENT_QUESTION_ANSWERING_MAPPING_NAMES",
        "MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES",
        "MODEL_FOR_ZERO_SHOT_OBJECT_DETECTION_MAPPING_NAMES",
        "MODEL_FOR_TEXT_RECOGNITION_MAPPING_NAMES",
        "MODEL_FOR_RETRIEVAL_MAPPING_NAMES",
    ],
    "audio": [
        "MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES",
        "MODEL_FOR_CTC_MAPPING_NAMES",
        "MODEL_FOR_RNNT_MAPPING_NAMES",
        "MODEL_FOR_TDT_MAPPING_NAMES",
        "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
        "MODEL_FOR_AUDIO_FRAME_CLASSIFICATION_MAPPING_NAMES",
        "MODEL_FOR_AUDIO_XVECTOR_MAPPING_NAMES",
        "MODEL_FOR_TEXT_TO_SPECTROGRAM_MAPPING_NAMES",
        "MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES",
    ],
    "vision": [
        "MODEL_FOR_IMAGE_MAPPING_NAMES",
        "MODEL_FOR_MASKED_IMAGE_MODELING_MAPPING_NAMES",
        "MODEL_FOR_CAUSAL_IMAGE_MODELING_MAPPING_NAMES",
        "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",
        "MODEL_FOR_IMAGE_SEGMENTATION_MAPPING_NAMES",
        "MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES",
        "MODEL_FOR_INSTANCE_SEGMENTATION_MAPPING_NAMES",
        "MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES",
        "MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES",
        "MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES",
        "MODEL_FOR_TABLE_RECOGNITION_MAPPING_NAMES",
        "MODEL_FOR_BACKBONE_MAPPING_NAMES",
        "MODEL_FOR_MASK_GENERATION_MAPPING_NAMES",
        "MODEL_FOR_KEYPOINT_DETECTION_MAPPING_NAMES",
        "MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES",
        "MODEL_FOR_IMAGE_TO_IMAGE_MAPPING_NAMES",
        "MODEL_FOR_IMAGE_MATTING_MAPPING_NAMES",
        "MODEL_FOR_NORMAL_ESTIMATION_MAPPING_NAMES",
        "MODEL_FOR_POINTMAP_ESTIMATION_MAPPING_NAMES",
        "MODEL_FOR_POSE_ESTIMATION_MAPPING_NAMES",
    ],
    "text": [
        "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
        "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
        "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
        "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
        "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
        "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES",
        "MODEL_FOR_TABLE_QUESTION_ANSWERING_MAPPING_NAMES",
        "MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES",
        "MODEL_FOR_NEXT_SENTENCE_PREDICTION_MAPPING_NAMES",
        "MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES",
    ],
}


def load_transformers():
    try:
        import torch  # noqa: F401  (SUPPORTED_TASKS lists no auto classes without torch)
    except ImportError:
        sys.exit("gen_model_types.py: PyTorch is not installed; the pipeline table is empty without it "
                 "(pip install torch transformers)")
    import transformers
    import transformers.models.auto.configuration_auto as configuration_auto
    import transformers.models.auto.modeling_auto as modeling_auto
    from transformers.pipelines import SUPPORTED_TASKS

    return transformers, configuration_auto, modeling_auto, SUPPORTED_TASKS


def as_list(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [v for v in value if v is not None]
    return [value]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(ROOT / "model_types.json"))
    parser.add_argument("--check", action="store_true", help="exit 1 if the file on disk is out of date")
    parser.add_argument("--registry", help="the registry JSON (default: run `skillset --registry`)")
    args = parser.parse_args()
    FAMILIES = load_families(args.registry)

    transformers, configuration_auto, modeling_auto, supported_tasks = load_transformers()

    # Every `*_MAPPING_NAMES` table, and the auto class that uses each one.
    names_tables = OrderedDict(
        (name, getattr(modeling_auto, name))
        for name in sorted(vars(modeling_auto))
        if name.startswith("MODEL_") and name.endswith("_MAPPING_NAMES")
    )
    auto_class_of_table: dict[str, str] = {}
    for attr in sorted(vars(modeling_auto)):
        cls = getattr(modeling_auto, attr)
        mapping = getattr(cls, "_model_mapping", None)
        if not attr.startswith("AutoModel") or mapping is None:
            continue
        for table, names in names_tables.items():
            if getattr(mapping, "_model_mapping", None) is names:
                auto_class_of_table.setdefault(table, attr)
    table_of_auto_class = {auto: table for table, auto in auto_class_of_table.items()}

    # Tasks: the pipeline table, then the legacy tasks.
    tasks: "OrderedDict[str, dict]" = OrderedDict()
    for task in sorted(supported_tasks):
        autos = [cls.__name__ for cls in supported_tasks[task].get("pt", ())]
        tasks[task] = {"name": task, "pipeline": True, "auto_classes": autos}
    for task, autos in LEGACY_TASKS.items():
        assert task not in tasks, f"{task} is a pipeline task again: drop it from LEGACY_TASKS"
        tasks[task] = {"name": task, "pipeline": False, "auto_classes": autos}
    for task in tasks.values():
        for auto in task["auto_classes"]:
            if auto not in table_of_auto_class:
                sys.exit(f"task {task['name']}: auto class {auto} has no *_MAPPING_NAMES table")

    base_table = names_tables["MODEL_MAPPING_NAMES"]
    entries = []
    for model_type in sorted(configuration_auto.CONFIG_MAPPING_NAMES):
        config_class = configuration_auto.CONFIG_MAPPING_NAMES[model_type]
        architectures = OrderedDict()
        for table, names in names_tables.items():
            if model_type in names and table in auto_class_of_table:
                architectures[auto_class_of_table[table]] = as_list(names[model_type])

        modality = modality_of(model_type, names_tables, configuration_auto)

        hf_tasks = OrderedDict()
        for task in tasks.values():
            allowed = AUTO_MODEL_TASK_MODALITIES.get(task["name"])
            if allowed is not None:
                kind = modality
                if modality == "multimodal":
                    # Contrastive encoders (CLAP) answer zero-shot audio classification; a
                    # generative audio-language model does not, though it has an AutoModel.
                    generative = any(model_type in names_tables[t] for t in GENERATIVE_TABLES)
                    kind = None if generative else sub_config_kind(model_type, configuration_auto)
                if kind not in allowed:
                    continue
            for auto in task["auto_classes"]:
                if auto in architectures:
                    hf_tasks[task["name"]] = architectures[auto][0]
                    break

        base = as_list(base_table.get(model_type, []))
        family = None
        for name, fam in FAMILIES.items():
            if any(cls in fam["base"] for cls in base):
                family = name
                break
        skillset_tasks = []
        if family is not None:
            fam_tasks = FAMILIES[family]["tasks"]
            skillset_tasks = [t for t, arch in hf_tasks.items() if arch in fam_tasks.get(t, [])]

        entries.append(
            OrderedDict(
                [
                    ("model_type", model_type),
                    ("config_class", config_class),
                    ("display_name", config_class[: -len("Config")] if config_class.endswith("Config") else config_class),
                    ("modality", modality),
                    ("family", family),
                    ("architectures", architectures),
                    ("tasks", hf_tasks),
                    ("skillset_tasks", skillset_tasks),
                ]
            )
        )

    families = [
        OrderedDict(
            [
                ("name", name),
                ("description", fam["description"]),
                ("modality", fam["modality"]),
                ("base_architectures", fam["base"]),
                ("tasks", OrderedDict((t, fam["tasks"][t]) for t in fam["tasks"])),
            ]
        )
        for name, fam in FAMILIES.items()
    ]
    for fam in families:
        for task in fam["tasks"]:
            assert task in tasks, f"family {fam['name']}: unknown task {task}"

    doc = OrderedDict(
        [
            ("schema_version", SCHEMA_VERSION),
            ("transformers_version", transformers.__version__),
            ("generated_by", "scripts/gen_model_types.py"),
            ("tasks", list(tasks.values())),
            ("families", families),
            ("model_types", entries),
        ]
    )
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    out = Path(args.output)
    if args.check:
        current = out.read_text() if out.exists() else ""
        if current != text:
            print(f"{out} is out of date for transformers {transformers.__version__}", file=sys.stderr)
            return 1
        print(f"{out} is up to date ({len(entries)} model types)")
        return 0
    out.write_text(text)
    with_family = sum(1 for e in entries if e["family"])
    print(f"wrote {out}: {len(entries)} model types, {len(tasks)} tasks, "
          f"{with_family} with a skillset family (transformers {transformers.__version__})")
    return 0


def modality_of(model_type: str, names_tables, configuration_auto) -> str:
    found = {
        modality
        for modality, tables in MODALITY_TABLES.items()
        if any(model_type in names_tables.get(t, {}) for t in tables)
    }
    kind = sub_config_kind(model_type, configuration_auto)
    if "time-series" in found:
        return "time-series"
    if "multimodal" in found or kind in ("vision-text", "audio-text", "audio-vision"):
        return "multimodal"
    if "video" in found:
        return "video"
    if "audio" in found and "vision" in found:
        return "multimodal"
    if "audio" in found:
        return "audio"
    if "vision" in found:
        return "vision"
    if "text" in found:
        return "text"
    if kind in ("vision", "audio"):
        return kind
    # Sub-models (`clip_vision_model`, `clap_text_model`, ...) name the part of their
    # parent's configuration they stand for.
    key = base_config_key(model_type, configuration_auto)
    for modality, words in BASE_CONFIG_KEY_MODALITIES:
        if any(word in key for word in words):
            return modality
    return "other"


def base_config_key(model_type: str, configuration_auto) -> str:
    try:
        key = getattr(configuration_auto.CONFIG_MAPPING[model_type], "base_config_key", "") or ""
    except Exception:
        return ""
    return " ".join(key) if isinstance(key, (list, tuple)) else str(key)


def sub_config_kind(model_type: str, configuration_auto):
    """What a composite configuration's sub-configurations say the model takes."""
    try:
        config_class = configuration_auto.CONFIG_MAPPING[model_type]
    except Exception:
        return None
    keys = " ".join(sorted((getattr(config_class, "sub_configs", None) or {}).keys()))
    has_text = "text" in keys or "decoder" in keys or "llm" in keys
    has_vision = "vision" in keys or "image" in keys
    has_audio = "audio" in keys or "speech" in keys
    if has_audio and has_vision:
        return "audio-vision"
    if has_audio and has_text:
        return "audio-text"
    if has_vision and has_text:
        return "vision-text"
    if has_vision:
        return "vision"
    if has_audio:
        return "audio"
    return None


if __name__ == "__main__":
    sys.exit(main())
