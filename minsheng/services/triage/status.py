"""The triage status shown to admins: the model, its threshold, and the recent tickets indexed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from minsheng.services.triage.training import model_metrics

if TYPE_CHECKING:
    from minsheng.services.triage.runtime import TriageRuntime


def model_status(runtime: TriageRuntime) -> dict[str, Any]:
    return {
        "loaded": runtime.model is not None,
        "path": str(runtime.model_path) if runtime.model_path else None,
        "version": runtime.model_version,
        "error": runtime.model_error,
        "threshold": runtime.threshold,
        "threshold_source": "override"
        if runtime.config.auto_threshold is not None
        else (
            "model"
            if runtime.model is not None and getattr(runtime.model, "threshold", None) is not None
            else "default"
        ),
        "auto_dispatch": runtime.settings.auto_dispatch,
        # The precision the model's own threshold was chosen for (recorded at training).
        "target_precision": (getattr(runtime.model, "metadata", None) or {}).get("target_precision"),
        "training": runtime.model_info,
        "metrics": model_metrics(runtime.model) if runtime.model is not None else {},
        "rules_skipped": runtime.org.skipped_rules,
        "recent": runtime.recent_status(),
    }
