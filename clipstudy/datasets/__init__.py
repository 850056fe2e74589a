"""Turn every dataset source into the prepared format that evaluation jobs read.

Sources: TFDS builders (`tfds`), the Miniplaces challenge (`miniplaces`),
CLIP_benchmark's WebDataset mirrors (`wds`) and a user's images (`folder`, `csv`).
Each writes `{split}.parquet` and `classes.json` with `clipstudy.data`.
"""
