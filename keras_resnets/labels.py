"""Label conventions shared by the data, the metrics, the tasks and the pictures (plain Python)."""

IGNORE_LABEL = 255  # mask pixels without a class (segmentation): the VOC "void" label
