"""The HTTP prediction service: the app, the follower that keeps each model's production
version loaded, and the request and answer schemas compiled from each contract. Imports learn
and store."""
