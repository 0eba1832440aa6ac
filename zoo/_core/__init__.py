"""The core floor: recipes, models, weights, building, saving and loading, labels, what `zoo info` knows."""
