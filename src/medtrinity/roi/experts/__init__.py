"""Expert ROI locators: find regions of interest where a source gives no mask or box.

Built-in experts are imported lazily by `get_expert`, so importing this package stays light.
"""

from medtrinity.roi.experts.base import (
    BUILTIN_MODULES,
    ClassicalExpert,
    Expert,
    EXPERT_MODES,
    default_expert_for,
    expert_names,
    merge_expert_regions,
    resolve_expert_choice,
    expert_source,
    get_expert,
    register_expert,
)

__all__ = [
    "BUILTIN_MODULES",
    "ClassicalExpert",
    "Expert",
    "EXPERT_MODES",
    "default_expert_for",
    "merge_expert_regions",
    "resolve_expert_choice",
    "expert_names",
    "expert_source",
    "get_expert",
    "register_expert",
]
