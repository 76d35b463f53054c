"""Regions of interest: geometry, measurements and expert locators."""
