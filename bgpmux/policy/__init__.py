"""Import and export policy as pure functions over immutable paths."""
