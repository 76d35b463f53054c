"""The build: configuration, stages, executors and the sharded output store."""
