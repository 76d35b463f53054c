"""Boxes written into conversation text, in the format the target model was trained to read.

- norm (default): [x0, y0, x1, y1] divided by the image width/height, three decimals, as LLaVA-1.5's
  grounding data writes them;
- qwen: integers 0–1000 in Qwen2-VL's `<|box_start|>(x0,y0),(x1,y1)<|box_end|>`, the label wrapped in
  `<|object_ref_start|>…<|object_ref_end|>`;
- pixels: the stored [x0, y0, x1, y1] (x1/y1 exclusive).
"""

from __future__ import annotations

BOX_FORMATS = ("norm", "qwen", "pixels")


def box_text(bbox: list[int], width: int, height: int, box_format: str) -> str:
    x0, y0, x1, y1 = bbox
    if box_format == "norm":
        return f"[{x0 / width:.3f}, {y0 / height:.3f}, {x1 / width:.3f}, {y1 / height:.3f}]"
    if box_format == "qwen":

        def q(value: int, size: int) -> int:
            return min(1000, max(0, round(value / size * 1000)))

        return f"<|box_start|>({q(x0, width)},{q(y0, height)}),({q(x1, width)},{q(y1, height)})<|box_end|>"
    if box_format == "pixels":
        return f"[{x0}, {y0}, {x1}, {y1}]"
    raise ValueError(f"unknown box format {box_format!r}; choose from {', '.join(BOX_FORMATS)}")


def ref_text(label: str, box_format: str) -> str:
    """The label as the box's referring expression (Qwen2-VL marks it with its object-ref tokens)."""
    return f"<|object_ref_start|>{label}<|object_ref_end|>" if box_format == "qwen" else label
