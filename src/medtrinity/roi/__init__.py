"""Regions of interest: geometry (masks, boxes, RLE, position words) and measurements inside vs around."""
