"""The model zoo: builders, presets and the registry.

>>> kdzoo.models.list_models()
>>> teacher = kdzoo.models.build("image_cnn", preset="teacher", num_classes=10)
>>> teacher, student = kdzoo.models.build_pair("av_to_audio", num_classes=10)
>>> fused = kdzoo.models.fuse_models({"image": image_teacher, "audio": audio_teacher}, 10)
"""

from kdzoo.models import audio, fusion, image, multimodal, tabular, text
from kdzoo.models.compose import fuse_models
from kdzoo.models.layers import Feature, feature_model, feature_names
from kdzoo.models.registry import (
    ModelSpec,
    PairSpec,
    build,
    build_pair,
    get_spec,
    list_models,
    list_pairs,
    register,
    register_pair,
)

register(
    ModelSpec(
        "image_cnn", image.image_cnn, image.PRESETS, ("image",), "CNN with batch norm, pooled"
    )
)
register(
    ModelSpec("audio_crnn", audio.audio_crnn, audio.PRESETS, ("audio",), "CNN+LSTM over log-mel")
)
register(
    ModelSpec("text_lstm", text.text_lstm, text.LSTM_PRESETS, ("text",), "embedding + (Bi)LSTM")
)
register(
    ModelSpec(
        "text_cnn_lstm",
        text.text_cnn_lstm,
        text.CNN_LSTM_PRESETS,
        ("text",),
        "embedding + Conv1D + LSTM",
    )
)
register(
    ModelSpec(
        "tabular_mlp",
        tabular.tabular_mlp,
        tabular.PRESETS,
        ("tabular",),
        "MLP over numeric and one-hot categorical columns",
    )
)
register(
    ModelSpec(
        "multimodal_concat",
        multimodal.multimodal_concat,
        multimodal.PRESETS,
        ("image", "audio"),
        "per-modality encoders, concatenation fusion (modalities= picks any subset)",
    )
)
register(
    ModelSpec(
        "fusion_early",
        fusion.fusion_early,
        fusion.EARLY_PRESETS,
        ("image", "audio"),
        "early fusion: concatenated encoder embeddings, one head; modality dropout",
    )
)
register(
    ModelSpec(
        "fusion_late",
        fusion.fusion_late,
        fusion.LATE_PRESETS,
        ("image", "audio"),
        "late fusion: per-modality heads, mean or learned-weight logits; modality dropout",
    )
)
register(
    ModelSpec(
        "fusion_gated",
        fusion.fusion_gated,
        fusion.GATED_PRESETS,
        ("image", "audio"),
        "gated fusion: per-example softmax modality weights ('modality_weights')",
    )
)
register_pair(
    PairSpec(
        "av_fusion",
        teacher=("fusion_gated", "teacher"),
        student=("fusion_gated", "student"),
        description="image+audio gated-fusion teacher, light gated-fusion student",
    )
)
register_pair(
    PairSpec(
        "av_to_audio",
        teacher=("multimodal_concat", "teacher"),
        student=("audio_crnn", "student"),
        description="cross-modal: image+audio teacher, audio-only student",
    )
)
register_pair(
    PairSpec(
        "av_to_image",
        teacher=("multimodal_concat", "teacher"),
        student=("image_cnn", "student"),
        description="cross-modal: image+audio teacher, image-only student",
    )
)

__all__ = [
    "Feature",
    "ModelSpec",
    "PairSpec",
    "build",
    "build_pair",
    "feature_model",
    "feature_names",
    "fuse_models",
    "get_spec",
    "list_models",
    "list_pairs",
    "register",
    "register_pair",
]
