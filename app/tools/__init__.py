"""Commands for people: predict (classify image files) and report (the runs side by side)."""
