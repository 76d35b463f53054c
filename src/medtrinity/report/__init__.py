"""`medtrinity report DIR`: a dataset card (README.md with Hugging Face front matter) and plots, from a build."""
