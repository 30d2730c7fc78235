"""A video's pixels: its frames in time (`probe`: exact timestamps, output frame count, which source frame each
output frame shows, the frames directory), writing them as JPGs (`frames`, the frames stage) straight from the
decoded YUV planes (`yuvjpeg`).

May import: core.
"""
