"""`medtrinity eval`: alignment of descriptions with human annotations, VQA scoring, and train/test leakage."""
