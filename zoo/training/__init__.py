"""Fine-tuning: preprocessing taken from the model, data sets per format, the loop, evaluation, history.

`zoo.fit`, `zoo.evaluate` and `zoo.transforms` are the public face; `zoo train` and `zoo eval` sit on them.
"""

DEFAULT_EPOCHS = 5  # of `zoo.fit` and `zoo train` alike; here, so that the command line reads it without torch
