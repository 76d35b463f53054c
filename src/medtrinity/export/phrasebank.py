"""The wordings of every question and instruction an export writes, at least eight per kind.

One wording per (record, question) is chosen by `pick` from a hash of the record id and the question's key,
so the same build gives the same files on every run while a dataset sees every wording about equally often.
Placeholders: {label} (an ROI label or finding), {box} (a box in the export's box format).
"""

from __future__ import annotations

import hashlib

BANK: dict[str, tuple[str, ...]] = {
    "modality": (
        "Which imaging modality is this?",
        "What imaging modality was used to acquire this image?",
        "What kind of medical image is this?",
        "Which modality does this image come from?",
        "What type of imaging is shown here?",
        "How was this image acquired?",
        "Name the imaging modality of this picture.",
        "What is the modality of this scan?",
    ),
    "organ": (
        "Which organ is shown in this image?",
        "What part of the body does this image show?",
        "Which body part is imaged here?",
        "What organ is being imaged?",
        "Which anatomical region does this image cover?",
        "What is the main organ in this image?",
        "Which organ does this picture focus on?",
        "Name the organ visible in this image.",
    ),
    "abnormality": (
        "What abnormality is seen in this image?",
        "What is the finding in this image?",
        "Which abnormality does this image show?",
        "What does this image show that is abnormal?",
        "Name the abnormal finding in this image.",
        "What pathology is present in this image?",
        "What is abnormal here?",
        "Which lesion or disease is visible in this image?",
    ),
    "finding": (
        "Is there {label} in this image?",
        "Does this image show {label}?",
        "Is {label} present in this image?",
        "Can {label} be seen in this image?",
        "Is there evidence of {label} here?",
        "Does the image contain {label}?",
        "Is {label} visible in this image?",
        "Do you see {label} in this image?",
    ),
    "normal": (
        "Is this image normal?",
        "Does this image look normal?",
        "Is this a normal image?",
        "Is the image free of abnormal findings?",
        "Would you call this image normal?",
        "Is everything normal in this image?",
        "Is this study normal?",
        "Does this image show a normal appearance?",
    ),
    "position": (
        "Where is the {label} located in the image?",
        "In which region of the image is the {label}?",
        "Where in the image can the {label} be found?",
        "Which part of the image contains the {label}?",
        "Where does the {label} lie in this image?",
        "Describe the location of the {label} in the image.",
        "Where is the {label}?",
        "In what part of the image is the {label} seen?",
    ),
    "side": (
        "On which side of the patient is the {label}?",
        "Is the {label} on the patient's left or right?",
        "Which side of the body is the {label} on?",
        "On which side is the {label}, from the patient's point of view?",
        "Is the {label} in the patient's left or right side?",
        "Which patient side shows the {label}?",
        "Left or right: where is the {label} in the patient?",
        "What side of the patient does the {label} involve?",
    ),
    "size": (
        "How large is the {label} compared with the whole image?",
        "How big is the {label} in this image?",
        "What fraction of the image does the {label} occupy?",
        "How much of the image is taken up by the {label}?",
        "Is the {label} small, moderate or large relative to the image?",
        "What is the size of the {label} relative to the image?",
        "How much of the image area does the {label} cover?",
        "Describe the size of the {label}.",
    ),
    "quantity": (
        "How many {label} regions are outlined in this image?",
        "How many {label} regions are marked?",
        "What is the number of {label} regions in this image?",
        "Count the {label} regions in this image.",
        "How many separate {label} regions can be seen?",
        "How many {label} regions does this image contain?",
        "How many {label} regions are annotated here?",
        "Give the number of {label} regions in the image.",
    ),
    "brightness": (
        "How does the {label} appear compared with its surroundings?",
        "What is the intensity of the {label} relative to the surrounding tissue?",
        "Is the {label} brighter or darker than its surroundings?",
        "How would you describe the brightness of the {label} relative to nearby areas?",
        "Compared with the area around it, how does the {label} look?",
        "What is the appearance of the {label} against its surroundings?",
        "How bright is the {label} relative to its surroundings?",
        "Describe the intensity of the {label} compared with the tissue around it.",
    ),
    "homogeneity": (
        "Is the {label} homogeneous or heterogeneous?",
        "Does the {label} look homogeneous or heterogeneous inside?",
        "Is the inside of the {label} homogeneous or heterogeneous?",
        "How uniform is the inside of the {label}?",
        "Describe the internal texture of the {label}.",
        "Is the texture of the {label} homogeneous or heterogeneous?",
        "What is the internal appearance of the {label}?",
        "Is the {label} uniform or heterogeneous in texture?",
    ),
    "margin": (
        "Is the margin of the {label} sharp or ill-defined?",
        "How well defined is the border of the {label}?",
        "What kind of margin does the {label} have?",
        "Describe the margin of the {label}.",
        "Is the edge of the {label} sharp or blurred?",
        "What are the borders of the {label} like?",
        "How clear is the boundary of the {label}?",
        "Is the boundary of the {label} sharp or ill-defined?",
    ),
    # LLaVA pretraining: an instruction whose answer is the whole description.
    "caption": (
        "Describe this medical image in detail.",
        "Describe the image concisely.",
        "Provide a detailed description of this image.",
        "What do you see in this image? Describe it.",
        "Write a report-style description of this image.",
        "Give a thorough description of the findings in this image.",
        "Summarize the visual content of this medical image.",
        "Explain what this image shows.",
        "Please describe the key findings and anatomy in this image.",
        "Analyze this image and describe what it shows.",
        "Can you describe this image for me?",
        "Render a clear and concise description of this medical image.",
    ),
    # Grounding, as LLaVA-1.5's referring data words it: a name -> its boxes, a box -> its name.
    "locate": (
        "Please provide the bounding box coordinate of the region this sentence describes: {label}.",
        "Where is the {label}? Give its bounding box.",
        "Locate every {label} in the image and output the bounding boxes.",
        "Give the bounding box of the {label}.",
        "Find the {label} in this image and give its coordinates.",
        "Output the box coordinates of each {label}.",
        "Detect the {label} and return its bounding box.",
        "Mark the {label} with a bounding box.",
    ),
    "region": (
        "Please provide a short description for this region: {box}.",
        "What is in the region {box}?",
        "What does the box {box} contain?",
        "Name the structure inside {box}.",
        "What is marked at {box}?",
        "Identify the region {box}.",
        "What is shown in the area {box}?",
        "What can be seen in the region {box}?",
    ),
}


def pick(kind: str, record_id: str, key: str = "", **values: str) -> str:
    """The wording of `kind` chosen for this record and question key, with its placeholders filled."""
    bank = BANK[kind]
    digest = hashlib.sha1(f"{record_id}\0{kind}\0{key}".encode()).digest()
    return bank[int.from_bytes(digest[:4], "big") % len(bank)].format(**values)
