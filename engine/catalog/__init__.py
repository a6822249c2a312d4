"""The catalogue as data: styles, moods, instruments and the model's style map, loaded and validated."""
