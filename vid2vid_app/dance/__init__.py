"""Motion transfer (Everybody Dance Now): configuration presets and the per-subject training driver."""
