"""Describers turn a sample (image, ROIs, metadata, retrieved knowledge) into the five attributes and one
paragraph; `verify` checks a description against the record. Backends register by name in `base`."""
