"""Image readers, one module per format family, all behind one interface (`base.Reader`).

raster.py (Pillow: PNG, JPEG, BMP, GIF, WebP …), tiff.py (tifffile), dicom.py (pydicom; with
dicom_header.py and dicom_geometry.py), nifti.py (nibabel), dicom_series.py (a folder as one series).
intensity.py holds the rules that turn stored values into 8-bit pixels; registry.py picks the reader for
a path by content, then by suffix. `sources/imaging.py` is the entry point (`read_image`, `read_mask`).
Nothing here imports the rest of `sources`, so any layer may use a reader.
"""
