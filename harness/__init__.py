"""The live harness, for the tests and the bench alike: real `dagster dev` and `ml-assets
serve` processes with a webhook receiver (`live`), and throwaway dg projects that declare
models as a team's own would (`projects`). Not part of the installed package."""
