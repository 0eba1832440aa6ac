"""Fine-tuning: preprocessing taken from the model, data sets per format, the loop, evaluation, history.

`zoo.fit`, `zoo.evaluate` and `zoo.transforms` are the public face; `zoo train` and `zoo eval` sit on them.
"""
