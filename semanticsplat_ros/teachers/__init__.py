"""2D teachers: SAM, dense CLIP/LSeg, text encoders, and the tiny default teachers."""
