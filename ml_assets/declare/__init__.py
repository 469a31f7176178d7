"""From YAML to spec: the `TabularModel` component, what loading a model checks against its
data, and writing a new model's YAML from a table. Imports the pipeline, learn and store."""
