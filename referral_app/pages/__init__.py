"""Page components."""
