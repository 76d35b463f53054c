"""medtrinity: turn medical image collections into multigranular {image, ROIs, description} triplets."""

__version__ = "0.1.0"
